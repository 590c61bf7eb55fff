import { describe, expect, it } from "vitest";
import { isMediaStats, type MediaStats } from "./api";
import { translate } from "../i18n";
import { sampleState } from "./sampleState";
import { closedText, failedText, mediaTexts, nameOf, rate, redisText, signInErrorText, summarize, type Text } from "./summary";

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

describe("media through the media server", () => {
  const media: MediaStats = {
    connected: true,
    transport: "tcp",
    estimate: 2_400_000,
    publishing: 2_100_000,
    published: [
      { kind: "audio", layers: [{ rid: null, bitrate: 32_000, height: null }] },
      {
        kind: "video",
        layers: [
          { rid: "q", bitrate: 150_000, height: 180 },
          { rid: "h", bitrate: 480_000, height: 360 },
          { rid: "f", bitrate: 1_500_000, height: 720 },
        ],
      },
    ],
    receiving: [
      { from: "b", kind: "video", layer: "h", sending: true, bitrate: 500_000, loss: 0.02 },
      { from: "c", kind: "video", layer: null, sending: false, bitrate: null, loss: null },
      { from: "b", kind: "audio", layer: null, sending: true, bitrate: 30_000, loss: 0 },
    ],
  };

  it("says what one sends, layer by layer, what one receives, how the connection goes, and the estimate", () => {
    expect(mediaTexts(media)).toEqual([
      { key: "admin.mediaSends", params: { rate: "2.1 Mbit/s", layers: "q 180p 150 kbit/s · h 360p 480 kbit/s · f 720p 1.5 Mbit/s" } },
      { key: "admin.mediaReceives", params: { count: 1, of: 2, layers: "h", rate: "530 kbit/s", loss: "2%" } },
      { key: "admin.mediaEstimate", params: { transport: "TCP", rate: "2.4 Mbit/s" } },
    ]);
  });

  it("says so of one relayed through TURN", () => {
    expect(mediaTexts({ ...media, transport: "relay" })[2]).toEqual({
      key: "admin.mediaEstimateRelayed",
      params: { rate: "2.4 Mbit/s" },
    });
    expect(isMediaStats({ ...media, transport: "relay" })).toBe(true);
  });

  it("shows a layer the browser does not send as a dash", () => {
    const published = media.published.map((t) =>
      t.kind === "video" ? { ...t, layers: t.layers.map((l) => (l.rid === "f" ? { ...l, bitrate: null, height: null } : l)) } : t,
    );
    expect(mediaTexts({ ...media, published })[0]?.params?.layers).toBe("q 180p 150 kbit/s · h 360p 480 kbit/s · f –");
  });

  it("shows a layer the browser stopped sending with the height it last had and a dash", () => {
    const published = media.published.map((t) =>
      t.kind === "video" ? { ...t, layers: t.layers.map((l) => (l.rid === "f" ? { ...l, bitrate: null } : l)) } : t,
    );
    expect(mediaTexts({ ...media, published })[0]?.params?.layers).toBe("q 180p 150 kbit/s · h 360p 480 kbit/s · f 720p –");
  });

  it("reads rates as people do, and a rate not known yet as a dash", () => {
    expect(rate(null)).toBe("–");
    expect(rate(999_499)).toBe("999 kbit/s");
    expect(rate(1_250_000)).toBe("1.3 Mbit/s");
  });

  it("accepts the server's figures and refuses a malformed one", () => {
    expect(isMediaStats(media)).toBe(true);
    expect(isMediaStats({ ...media, receiving: [{ from: "b" }] })).toBe(false);
    expect(isMediaStats({ ...media, estimate: "fast" })).toBe(false);
    expect(isMediaStats({ ...media, transport: "carrier pigeon" })).toBe(false);
  });
});
