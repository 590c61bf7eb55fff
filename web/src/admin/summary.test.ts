import { describe, expect, it } from "vitest";
import { translate } from "../i18n";
import { sampleState } from "./sampleState";
import { closedText, failedText, nameOf, redisText, signInErrorText, summarize, type Text } from "./summary";

const en = (text: Text) => translate("en", text.key, text.params);

describe("summarize", () => {
  it("counts rooms, and each person once however many rooms they are in", () => {
    expect(summarize(sampleState)).toEqual({ rooms: 2, people: 2, inCall: 1 });
  });
  it("counts nothing for an idle server", () => {
    expect(summarize({ ...sampleState, rooms: [] })).toEqual({ rooms: 0, people: 0, inCall: 0 });
  });
});

describe("texts", () => {
  it("says how a room closing went, one person or several", () => {
    expect(en(closedText({ room: "standup", people: 3 }))).toBe("Closed “standup” (3 people).");
    expect(en(closedText({ room: "standup", people: 1 }))).toBe("Closed “standup” (1 person).");
    expect(translate("ko", closedText({ room: "standup", people: 3 }).key, { room: "standup", people: 3 })).toBe(
      "“standup” 방을 닫았어요(3명).",
    );
  });
  it("names the person disconnected, or their id once they are gone", () => {
    expect(nameOf(sampleState, "b")).toBe("Bob");
    expect(nameOf(sampleState, "zz")).toBe("zz");
    expect(nameOf(null, "b")).toBe("b");
  });
  it("says the link to other nodes", () => {
    expect(en(redisText("off"))).toBe("None (single node)");
    expect(en(redisText("down"))).toBe("Down");
  });
  it("shows the server's message when an action fails", () => {
    expect(en(failedText({ code: "not_found", message: "no such room" }))).toBe("That didn't work: no such room");
    expect(en(failedText({ code: "http_500", message: "" }))).toBe("That didn't work: http_500");
  });
  it("says a refused token in the sign-in form's words", () => {
    expect(en(signInErrorText({ code: "unauthorized", message: "x" }))).toBe("That token is not right.");
    expect(en(signInErrorText({ code: "network", message: "x" }))).toBe("Couldn't reach the server. Try again.");
  });
});
