// Questions put to the person in the page's own dialog (#ask), never the browser's `confirm`: it
// speaks the page's language, names each way out ("Leave the call", "Leave the room"), and keeps
// the focus inside until it is answered. Escape, the Cancel button or a click beside it answer
// "none of these" (null).
import { byId, el } from "./dom";
import type { Key, Params } from "./i18n";
import { t } from "./lang";

export type Choice<T extends string> = { value: T; key: Key; danger?: boolean };

export type Question<T extends string> = {
  title: Key;
  text?: Key;
  params?: Params;
  /** The first is focused: put the mildest first. */
  choices: ReadonlyArray<Choice<T>>;
};

let answer: ((value: string | null) => void) | null = null;

/** Asks, and resolves with the value of the choice taken, or null. A question asked while
 * another is open answers that one null. */
export function ask<T extends string>(question: Question<T>): Promise<T | null> {
  const dialog = byId("ask", HTMLDialogElement);
  const previous = answer;
  answer = null;
  previous?.(null);
  byId("ask-title", HTMLElement).textContent = t(question.title, question.params);
  const text = byId("ask-text", HTMLElement);
  text.textContent = question.text ? t(question.text, question.params) : "";
  text.hidden = !question.text;
  const buttons = question.choices.map((choice) => {
    const button = el("button", { className: choice.danger ? "btn btn-danger" : "btn btn-primary", text: t(choice.key), attrs: { type: "button", "data-value": choice.value } });
    button.addEventListener("click", () => settle(choice.value));
    return button;
  });
  const cancel = el("button", { className: "btn", text: t("ask.cancel"), attrs: { type: "button", "data-value": "" } });
  cancel.addEventListener("click", () => settle(null));
  byId("ask-choices", HTMLElement).replaceChildren(...buttons, cancel);
  if (!dialog.dataset.wired) {
    dialog.dataset.wired = "true";
    // Escape: the dialog closes itself, and its close event answers (a close event that comes
    // after the dialog was opened again for another question is an old one).
    dialog.addEventListener("close", () => {
      if (!dialog.open) settle(null);
    });
    dialog.addEventListener("click", (event) => {
      if (event.target === dialog) settle(null);
    });
  }
  const answered = new Promise<T | null>((resolve) => {
    answer = (value) => resolve(value as T | null);
  });
  if (!dialog.open) dialog.showModal();
  buttons[0]?.focus();
  return answered;
}

function settle(value: string | null): void {
  const resolve = answer;
  answer = null;
  const dialog = document.getElementById("ask");
  if (dialog instanceof HTMLDialogElement && dialog.open) dialog.close();
  resolve?.(value);
}
