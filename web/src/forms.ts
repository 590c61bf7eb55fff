// Checks as you type: a field whose text the server would refuse says why under itself, in plain
// words, and is marked for screen readers (aria-invalid, and the message as its description).
// An empty required field is only pointed out when the form is sent, not while typing.
import { el } from "./dom";
import type { Key, Params } from "./i18n";
import { lang, onLangChange, t } from "./lang";
import type { Problem } from "./validate";

type Field = HTMLInputElement | HTMLTextAreaElement;

export class FieldCheck {
  private readonly message: HTMLElement;
  private problem: Problem | null = null;

  constructor(
    private readonly field: Field,
    private readonly check: (value: string) => Problem | null,
    options: { maxLength?: number; emptyKey?: Key; after?: Element } = {},
  ) {
    if (options.maxLength !== undefined) field.maxLength = options.maxLength;
    this.emptyKey = options.emptyKey ?? "form.required";
    this.message = el("p", { className: "field-error", attrs: { id: `${field.id}-error`, "aria-live": "polite" } });
    this.message.hidden = true;
    // Under the field, or under the row it sits in.
    (options.after ?? field).after(this.message);
    field.addEventListener("input", () => this.refresh(false));
    onLangChange(() => this.render());
  }

  private readonly emptyKey: Key;

  /** Checks the field now; `sending` also points out an empty required field. Returns whether it
   * is fine to send. */
  refresh(sending: boolean): boolean {
    const problem = this.check(this.field.value);
    this.problem = problem?.kind === "required" && !sending ? null : problem;
    this.render();
    return problem === null;
  }

  /** Forgets what it said (the field was filled in by the page, or emptied after sending). */
  clear(): void {
    this.problem = null;
    this.render();
  }

  private render(): void {
    const problem = this.problem;
    this.message.hidden = problem === null;
    this.message.textContent = problem ? t(...this.words(problem)) : "";
    if (problem) {
      this.field.setAttribute("aria-invalid", "true");
      this.field.setAttribute("aria-describedby", this.message.id);
    } else {
      this.field.removeAttribute("aria-invalid");
      this.field.removeAttribute("aria-describedby");
    }
  }

  private words(problem: Problem): [Key, Params?] {
    switch (problem.kind) {
      case "required":
        return [this.emptyKey];
      case "tooLong":
        return ["form.tooLong", { max: problem.max.toLocaleString(lang()), count: problem.count.toLocaleString(lang()) }];
      case "invisible":
        return ["form.invisible"];
    }
  }
}
