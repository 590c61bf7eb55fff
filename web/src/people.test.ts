import { describe, expect, it } from "vitest";
import { callIconList } from "./people";

describe("callIconList", () => {
  it("says in the call, then microphone and camera, on or off", () => {
    expect(callIconList({ audio: true, video: false, screen: false })).toEqual([
      { className: "pi-call", label: "people.inCall" },
      { className: "pi-mic", label: "people.micOn" },
      { className: "pi-cam-off", label: "people.camOff" },
    ]);
    expect(callIconList({ audio: false, video: true, screen: false }).map((i) => i.label)).toEqual([
      "people.inCall",
      "people.micOff",
      "people.camOn",
    ]);
  });
  it("shows a shared screen only while it is shared", () => {
    expect(callIconList({ audio: false, video: false, screen: true }).at(-1)).toEqual({
      className: "pi-screen",
      label: "people.screen",
    });
  });
});
