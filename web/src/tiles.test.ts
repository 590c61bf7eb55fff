import { describe, expect, it } from "vitest";
import { gridLayout, PAGE_MAX, PAGE_MAX_NARROW, pageSize, TILE_GAP } from "./tiles";

const shape = (n: number, w: number, h: number) => {
  const l = gridLayout(n, w, h);
  return [l.cols, l.rows];
};

describe("gridLayout on a wide stage", () => {
  const W = 1280;
  const H = 720;
  it("gives one person the whole stage", () => {
    expect(gridLayout(1, W, H)).toEqual({ cols: 1, rows: 1, width: 1280, height: 720 });
  });
  it("puts two side by side, three and four in two rows, five and six in three columns", () => {
    expect(shape(2, W, H)).toEqual([2, 1]);
    expect(shape(3, W, H)).toEqual([2, 2]);
    expect(shape(4, W, H)).toEqual([2, 2]);
    expect(shape(5, W, H)).toEqual([3, 2]);
    expect(shape(6, W, H)).toEqual([3, 2]);
    expect(shape(9, W, H)).toEqual([3, 3]);
  });
  it("keeps every tile inside the stage, gaps included", () => {
    for (let n = 1; n <= 12; n++) {
      const l = gridLayout(n, W, H);
      expect(l.cols * l.rows).toBeGreaterThanOrEqual(n);
      expect(l.cols * l.width + (l.cols - 1) * TILE_GAP).toBeLessThanOrEqual(W);
      expect(l.rows * l.height + (l.rows - 1) * TILE_GAP).toBeLessThanOrEqual(H);
      expect(l.width / l.height).toBeLessThanOrEqual(16 / 9 + 0.02);
      expect(l.width / l.height).toBeGreaterThanOrEqual(4 / 3 - 0.02);
    }
  });
  it("gives whole pixels", () => {
    const l = gridLayout(3, 1001, 603);
    expect(Number.isInteger(l.width) && Number.isInteger(l.height)).toBe(true);
  });
});

describe("gridLayout on a phone held upright (360 px wide)", () => {
  const W = 348;
  const H = 430;
  it("stacks two people", () => {
    expect(shape(2, W, H)).toEqual([1, 2]);
    const l = gridLayout(2, W, H);
    expect(l.width).toBe(W);
  });
  it("lets one person fill the stage, upright", () => {
    const l = gridLayout(1, W, H);
    expect(l.width).toBe(W);
    expect(l.height).toBeGreaterThan(W);
  });
  it("uses two columns for five or six", () => {
    expect(shape(5, W, H)).toEqual([2, 3]);
    expect(shape(6, W, H)).toEqual([2, 3]);
  });
});

describe("gridLayout before the stage has a size", () => {
  it("still says how many columns, with no tile size", () => {
    expect(gridLayout(4, 0, 0)).toEqual({ cols: 2, rows: 2, width: 0, height: 0 });
    expect(gridLayout(0, 0, 0)).toEqual({ cols: 1, rows: 1, width: 0, height: 0 });
  });
});

describe("pages of tiles", () => {
  it("holds as many tiles as fit at a readable size, at most 25", () => {
    expect(pageSize(1200, 700)).toBe(PAGE_MAX);
    // 3 columns of 160 and 3 rows of 100, with gaps.
    expect(pageSize(500 + 2 * TILE_GAP, 300 + 2 * TILE_GAP)).toBe(PAGE_MAX_NARROW);
    expect(pageSize(700, 330)).toBe(12);
  });

  it("holds at most 6 on a phone, and always one", () => {
    expect(pageSize(370, 900)).toBe(PAGE_MAX_NARROW);
    expect(pageSize(300, 220)).toBe(2);
    expect(pageSize(100, 50)).toBe(1);
  });

  it("holds the most before the stage has a size", () => {
    expect(pageSize(0, 0)).toBe(PAGE_MAX);
  });
});
