// How a person's place in a call shows in lists of people (the room's participants, the admin
// page): small icons for being in the call, the microphone, the camera and a shared screen, each
// with a label that screen readers say and a tooltip shows.
import { el } from "./dom";
import type { Key } from "./i18n";
import { t } from "./lang";
import type { Media } from "./protocol";

export type CallIcon = { className: string; label: Key };

/** The icons for someone in the call with this media; a screen shows only while shared. */
export function callIconList(call: Media): CallIcon[] {
  const icons: CallIcon[] = [
    { className: "pi-call", label: "people.inCall" },
    call.audio ? { className: "pi-mic", label: "people.micOn" } : { className: "pi-mic-off", label: "people.micOff" },
    call.video ? { className: "pi-cam", label: "people.camOn" } : { className: "pi-cam-off", label: "people.camOff" },
  ];
  if (call.screen) icons.push({ className: "pi-screen", label: "people.screen" });
  return icons;
}

export function callIcons(call: Media): HTMLElement {
  return el(
    "span",
    { className: "person-call" },
    ...callIconList(call).map(({ className, label }) =>
      el("span", {
        className: `person-icon ${className}`,
        attrs: { role: "img", "aria-label": t(label), title: t(label) },
      }),
    ),
  );
}
