import { describe, expect, it } from "vitest";
import { qualityOf } from "./transport";

describe("the quality shown on a tile", () => {
  it("is good when next to nothing is lost, fair with some loss, poor with much", () => {
    expect(qualityOf(1000, 0)).toBe("good");
    expect(qualityOf(990, 10)).toBe("good");
    expect(qualityOf(970, 30)).toBe("fair");
    expect(qualityOf(900, 100)).toBe("poor");
  });

  it("is poor when nothing arrives at all", () => {
    expect(qualityOf(0, 0)).toBe("poor");
    expect(qualityOf(0, 50)).toBe("poor");
  });
});
