import { describe, expect, it } from "vitest";
import { joinFailureNotice, noticeText, openButtonLabel } from "./callView";

describe("joinFailureNotice", () => {
  it("says a full call is full, with its size, and that chat still works", () => {
    const notice = joinFailureNotice({ code: "call_full", message: "the call is full" }, 6);
    expect(notice).toEqual({ key: "call.fullMessage", params: { limit: 6 } });
    expect(noticeText(notice)).toBe("This call is full (6 people). You can still chat.");
  });
  it("explains other failures with the error's text", () => {
    const notice = joinFailureNotice({ code: "not_in_room", message: "x" }, 6);
    expect(noticeText(notice)).toBe("Couldn't join the call: You are not in that room.");
    const unknown = joinFailureNotice({ code: "weird", message: "something odd" }, 6);
    expect(noticeText(unknown)).toBe("Couldn't join the call: Something went wrong: something odd");
  });
});

describe("openButtonLabel", () => {
  it("invites, counts, and says when the call is full", () => {
    expect(openButtonLabel(0, 6)).toEqual({ key: "call.join", full: false });
    expect(openButtonLabel(2, 6)).toEqual({ key: "call.joinCount", params: { count: 2 }, full: false });
    expect(openButtonLabel(6, 6)).toEqual({ key: "call.full", params: { count: 6, limit: 6 }, full: true });
    expect(openButtonLabel(7, 6).full).toBe(true);
  });
});
