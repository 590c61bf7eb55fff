// The call's video grid (#tiles): one tile per person in the call, laid out so that the tiles of
// a page are as large as the stage allows, each showing its video (or an initial when the camera
// is off), its name, a muted mark, who is speaking and how its connection is doing. A large call
// shows a page of tiles at a time (as many as fit at a readable size, at most 25, and 6 on a
// phone); tiles of other pages are not on screen, so no video of theirs is received.
import { byId, el, setMediaData, streamShowing } from "./dom";
import { initial } from "./format";
import { hueOf } from "./names";
import { onLangChange, t } from "./lang";
import type { ConnectionLabel } from "./peer";
import type { Media } from "./protocol";
import type { Quality } from "./transport";

export type Layout = { cols: number; rows: number; width: number; height: number };

export const TILE_GAP = 8;
/** Tiles are never wider than a widescreen picture… */
const WIDEST = 16 / 9;
/** The smallest tile a page holds, in CSS pixels: smaller, a face is no longer a face. */
export const MIN_TILE = { width: 160, height: 100 };
/** The most tiles on one page; on a narrow screen (a phone), fewer. */
export const PAGE_MAX = 25;
export const PAGE_MAX_NARROW = 6;
const NARROW = 600;

/** How the tiles are laid out: a grid of pages, or one person large over a strip of the others. */
export type Arrangement = { kind: "grid" } | { kind: "speaker"; main: string };

/** The strip under the main tile: tiles this high (CSS pixels), 16:9. */
const STRIP_HEIGHT = 90;
const STRIP_HEIGHT_NARROW = 64;

/** How many tiles one page of a `width` × `height` stage holds. */
export function pageSize(width: number, height: number, gap = TILE_GAP): number {
  if (width <= 0 || height <= 0) return PAGE_MAX;
  const cols = Math.max(1, Math.floor((width + gap) / (MIN_TILE.width + gap)));
  const rows = Math.max(1, Math.floor((height + gap) / (MIN_TILE.height + gap)));
  return Math.min(cols * rows, width < NARROW ? PAGE_MAX_NARROW : PAGE_MAX);
}

/**
 * Columns, rows and tile size for `n` tiles on a `width` × `height` stage: the arrangement that
 * gives each tile the largest area, with tiles no wider than 16:9 and no narrower than 4:3 (3:4 on
 * a portrait stage, such as a phone held upright). Sizes are whole pixels, so rows never wrap early.
 */
export function gridLayout(n: number, width: number, height: number, gap = TILE_GAP): Layout {
  const narrowest = height > width ? 3 / 4 : 4 / 3;
  let best: Layout | null = null;
  let bestArea = 0;
  for (let cols = 1; cols <= Math.max(1, n); cols++) {
    const rows = Math.max(1, Math.ceil(n / cols));
    const cellW = (width - gap * (cols - 1)) / cols;
    const cellH = (height - gap * (rows - 1)) / rows;
    if (cellW <= 0 || cellH <= 0) continue;
    const aspect = Math.min(WIDEST, Math.max(narrowest, cellW / cellH));
    const w = Math.min(cellW, cellH * aspect);
    const h = Math.min(cellH, w / aspect);
    if (w * h > bestArea + 0.5) {
      bestArea = w * h;
      best = { cols, rows, width: Math.floor(w), height: Math.floor(h) };
    }
  }
  if (best) return best;
  const cols = Math.max(1, Math.ceil(Math.sqrt(n)));
  return { cols, rows: Math.max(1, Math.ceil(n / cols)), width: 0, height: 0 };
}

/** A tile's content; `connection` left out keeps what the tile shows ("new" for a new one). */
export type TileInfo = { name: string; self: boolean; media: Media | null; connection?: ConnectionLabel; hand?: boolean };

type Tile = {
  root: HTMLElement;
  video: HTMLVideoElement;
  quality: HTMLElement;
  pin: HTMLButtonElement | null;
  avatar: HTMLElement;
  name: HTMLElement;
  muted: HTMLElement;
  hand: HTMLElement;
  stateText: HTMLElement;
  you: HTMLElement | null;
  self: boolean;
};

export class TilesView {
  private readonly grid = byId("tiles", HTMLElement);
  /** The speaker the others' sound plays on, once one was picked. */
  private speaker: string | null = null;
  private readonly pager = byId("tiles-pager", HTMLElement);
  private readonly prev = byId("tiles-prev", HTMLButtonElement);
  private readonly next = byId("tiles-next", HTMLButtonElement);
  private readonly pageLabel = byId("tiles-page", HTMLElement);
  private readonly tiles = new Map<string, Tile>();
  private autoplayHandler: () => void = () => {};
  private pinHandler: (id: string) => void = () => {};
  private turnHandler: () => void = () => {};
  private arrangement: Arrangement = { kind: "grid" };
  /** The page shown, from 0. */
  private page = 0;
  private pages = 1;

  constructor() {
    if (typeof ResizeObserver !== "undefined") new ResizeObserver(() => this.layout()).observe(this.grid);
    onLangChange(() => {
      for (const tile of this.tiles.values()) this.relabel(tile);
      this.relabelPager();
    });
    this.prev.addEventListener("click", () => this.turn(-1));
    this.next.addEventListener("click", () => this.turn(1));
    this.layout();
  }

  /** Shows the page before (-1) or after (1) this one. */
  private turn(by: number): void {
    this.page = Math.min(this.pages - 1, Math.max(0, this.page + by));
    this.layout();
    this.turnHandler();
  }

  /** Called when someone's pin button is pressed. */
  onPin(handler: (id: string) => void): void {
    this.pinHandler = handler;
  }

  /** Called when another page of tiles is shown. */
  onTurn(handler: () => void): void {
    this.turnHandler = handler;
  }

  /** The grid, or one person large (see [`Arrangement`]); the pinned tile's button says so. */
  arrange(arrangement: Arrangement, pinned: string | null): void {
    this.arrangement = arrangement;
    for (const [id, tile] of this.tiles) {
      tile.pin?.setAttribute("aria-pressed", String(id === pinned));
      tile.root.toggleAttribute("data-pinned", id === pinned);
      this.relabel(tile);
    }
    this.layout();
  }

  /** Called when the browser refused to play someone's sound before a click on the page. */
  onAutoplayBlocked(handler: () => void): void {
    this.autoplayHandler = handler;
  }

  has(id: string): boolean {
    return this.tiles.has(id);
  }

  ids(): string[] {
    return [...this.tiles.keys()];
  }

  /** The others' tiles on the screen, each with its height in device pixels. */
  shown(): { id: string; height: number }[] {
    const ratio = window.devicePixelRatio || 1;
    const shown = [];
    for (const [id, tile] of this.tiles) {
      if (tile.self) continue;
      const height = Math.round(tile.video.getBoundingClientRect().height * ratio);
      if (height > 0) shown.push({ id, height });
    }
    return shown;
  }

  /** Adds a tile (the own one first), or updates the one there. */
  put(id: string, info: TileInfo): void {
    let tile = this.tiles.get(id);
    const isNew = !tile;
    if (!tile) {
      tile = this.create(id, info.self);
      this.tiles.set(id, tile);
      if (info.self) this.grid.prepend(tile.root);
      else this.grid.append(tile.root);
      this.layout();
    }
    this.setName(id, info.name);
    this.setMedia(id, info.media);
    tile.hand.hidden = !info.hand;
    tile.root.dataset.hand = info.hand ? "up" : "down";
    if (info.connection !== undefined || isNew) this.setConnection(id, info.connection ?? "new");
  }

  /** The own tile's id changes with a new connection. */
  rekey(oldId: string, newId: string): void {
    const tile = this.tiles.get(oldId);
    if (!tile || oldId === newId) return;
    this.tiles.delete(oldId);
    this.tiles.get(newId)?.root.remove();
    this.tiles.set(newId, tile);
    tile.root.dataset.id = newId;
  }

  setName(id: string, name: string): void {
    const tile = this.tiles.get(id);
    if (!tile) return;
    tile.name.textContent = name;
    tile.avatar.dataset.initial = initial(name);
    this.relabel(tile);
  }

  setMedia(id: string, media: Media | null): void {
    const tile = this.tiles.get(id);
    if (!tile) return;
    setMediaData(tile.root, media);
    tile.muted.hidden = media?.audio === true;
  }

  setConnection(id: string, label: ConnectionLabel): void {
    const tile = this.tiles.get(id);
    if (!tile) return;
    tile.root.dataset.connection = label;
    this.relabel(tile);
  }

  /** How well their media arrives, as bars on the tile; `null`: not known (nothing shown). */
  setQuality(id: string, quality: Quality | null): void {
    const tile = this.tiles.get(id);
    if (!tile || (tile.root.dataset.quality ?? null) === quality) return;
    if (quality) tile.root.dataset.quality = quality;
    else delete tile.root.dataset.quality;
    this.relabel(tile);
  }

  setSpeaking(id: string, speaking: boolean): void {
    const tile = this.tiles.get(id);
    if (!tile) return;
    const value = String(speaking);
    if (tile.root.dataset.speaking !== value) tile.root.dataset.speaking = value;
  }

  /** What the tile's video element plays (theirs: sound and picture; own: picture only). */
  /** Plays the others' sound on this speaker (a device id; "" is the browser's default). */
  setSpeaker(deviceId: string): void {
    this.speaker = deviceId;
    for (const tile of this.tiles.values()) if (!tile.self) this.playOn(tile.video);
  }

  private playOn(video: HTMLVideoElement): void {
    const sink = video as HTMLVideoElement & { setSinkId?: (id: string) => Promise<void> };
    if (this.speaker !== null && sink.setSinkId) void sink.setSinkId(this.speaker).catch(() => {});
  }

  setStream(id: string, stream: MediaStream | null): void {
    const tile = this.tiles.get(id);
    if (!tile || tile.video.srcObject === stream) return;
    tile.video.srcObject = stream;
    if (stream) this.play(tile);
  }

  /** Shows just this video track (the own tile: the camera or the shared screen). */
  setTrack(id: string, track: MediaStreamTrack | null): void {
    const tile = this.tiles.get(id);
    if (tile) this.setStream(id, streamShowing(tile.video.srcObject, track));
  }

  remove(id: string): void {
    const tile = this.tiles.get(id);
    if (!tile) return;
    tile.video.srcObject = null;
    tile.root.remove();
    this.tiles.delete(id);
    this.layout();
  }

  clear(): void {
    for (const id of this.ids()) this.remove(id);
  }

  /** Plays every tile again: after a click, the browser lets sound play. */
  retryPlayback(): void {
    for (const tile of this.tiles.values()) if (tile.video.srcObject && tile.video.paused) this.play(tile);
  }

  /** Sizes the tiles for how many there are and how large the stage is now. */
  layout(): void {
    const arrangement = this.arrangement;
    const main = arrangement.kind === "speaker" ? this.tiles.get(arrangement.main) : undefined;
    this.grid.dataset.layout = main ? "speaker" : "grid";
    if (main) return this.layoutSpeaker(main);
    for (const tile of this.tiles.values()) {
      tile.root.removeAttribute("data-main");
      tile.root.style.removeProperty("--tile-w");
      tile.root.style.removeProperty("--tile-h");
    }
    const all = [...this.tiles.values()];
    const perPage = pageSize(this.grid.clientWidth, this.grid.clientHeight);
    this.pages = Math.max(1, Math.ceil(all.length / perPage));
    this.page = Math.min(this.page, this.pages - 1);
    const first = this.page * perPage;
    all.forEach((tile, at) => {
      tile.root.hidden = at < first || at >= first + perPage;
    });
    this.pager.hidden = this.pages < 2;
    this.prev.disabled = this.page === 0;
    this.next.disabled = this.page === this.pages - 1;
    this.relabelPager();
    const n = Math.min(perPage, all.length - first);
    this.grid.dataset.count = String(n);
    const layout = gridLayout(n, this.grid.clientWidth, this.grid.clientHeight);
    this.grid.dataset.cols = String(layout.cols);
    this.grid.dataset.rows = String(layout.rows);
    if (layout.width > 0) {
      this.grid.style.setProperty("--tile-w", `${layout.width}px`);
      this.grid.style.setProperty("--tile-h", `${layout.height}px`);
    }
  }

  /** One tile as large as the stage allows, the others in a strip under it, as many as fit. */
  private layoutSpeaker(main: Tile): void {
    const [width, height] = [this.grid.clientWidth, this.grid.clientHeight];
    this.pager.hidden = true;
    const stripH = width < NARROW ? STRIP_HEIGHT_NARROW : STRIP_HEIGHT;
    const stripW = Math.floor((stripH * 16) / 9);
    const others = [...this.tiles.values()].filter((tile) => tile !== main);
    const fits = Math.max(0, Math.floor((width + TILE_GAP) / (stripW + TILE_GAP)));
    const strip = others.length ? stripH + TILE_GAP : 0;
    const big = gridLayout(1, width, Math.max(0, height - strip));
    main.root.hidden = false;
    main.root.setAttribute("data-main", "");
    main.root.style.setProperty("--tile-w", `${big.width}px`);
    main.root.style.setProperty("--tile-h", `${big.height}px`);
    others.forEach((tile, at) => {
      tile.root.removeAttribute("data-main");
      tile.root.hidden = at >= fits;
      tile.root.style.setProperty("--tile-w", `${stripW}px`);
      tile.root.style.setProperty("--tile-h", `${stripH}px`);
    });
    this.grid.dataset.count = String(1 + Math.min(fits, others.length));
  }

  private relabelPager(): void {
    this.pageLabel.textContent = t("call.page", { page: this.page + 1, pages: this.pages });
    this.prev.setAttribute("aria-label", t("call.previousPage"));
    this.next.setAttribute("aria-label", t("call.nextPage"));
  }

  private play(tile: Tile): void {
    tile.video.play().catch((error: unknown) => {
      if (error instanceof DOMException && error.name === "NotAllowedError") this.autoplayHandler();
    });
  }

  private create(id: string, self: boolean): Tile {
    const video = el("video", { className: "tile-video" });
    video.autoplay = true;
    video.playsInline = true;
    if (self) {
      // Our own sound would echo; the picture is enough.
      video.muted = true;
      video.setAttribute("muted", "");
    }
    const avatar = el("span", { className: "tile-avatar" });
    // Their colour, as in the people list and the chat.
    avatar.style.setProperty("--hue", String(hueOf(id)));
    const name = el("span", { className: "tile-name" });
    const muted = el("span", { className: "tile-muted", attrs: { role: "img" } });
    const hand = el("span", { className: "tile-hand icon-mask", attrs: { role: "img" } });
    hand.hidden = true;
    const you = self ? el("span", { className: "tile-you" }) : null;
    const stateText = el("span", { className: "tile-state-text" });
    const quality = el(
      "span",
      { className: "tile-quality", attrs: { role: "img" } },
      el("span", { className: "bar" }),
      el("span", { className: "bar" }),
      el("span", { className: "bar" }),
    );
    const pin = self ? null : el("button", { className: "tile-pin", attrs: { type: "button", "aria-pressed": "false" } });
    pin?.addEventListener("click", () => this.pinHandler(id));
    const spinner = el("span", { className: "tile-spinner", attrs: { "aria-hidden": "true" } });
    const root = el(
      "div",
      { className: "tile", attrs: { "data-id": id, "data-speaking": "false" } },
      video,
      el("div", { className: "tile-off", attrs: { "aria-hidden": "true" } }, avatar),
      el("div", { className: "tile-state" }, spinner, stateText),
      el("div", { className: "tile-label" }, hand, quality, muted, name, you),
      ...(pin ? [pin] : []),
    );
    if (self) root.setAttribute("data-self", "");
    else this.playOn(video);
    const tile = { root, video, quality, pin, avatar, name, muted, hand, stateText, you, self };
    this.relabel(tile);
    return tile;
  }

  private relabel(tile: Tile): void {
    tile.muted.setAttribute("aria-label", t("call.muted"));
    tile.muted.title = t("call.muted");
    tile.hand.setAttribute("aria-label", t("meeting.handRaised"));
    tile.hand.title = t("meeting.handRaised");
    if (tile.you) tile.you.textContent = t("room.you");
    const quality = tile.root.dataset.quality;
    if (quality === "good" || quality === "fair" || quality === "poor") {
      const label = t(`call.quality.${quality}`);
      tile.quality.setAttribute("aria-label", label);
      tile.quality.title = label;
    }
    if (tile.pin) {
      const pinned = tile.pin.getAttribute("aria-pressed") === "true";
      tile.pin.textContent = t(pinned ? "call.unpin" : "call.pin");
      tile.pin.setAttribute("aria-label", t(pinned ? "call.unpinName" : "call.pinName", { name: tile.name.textContent ?? "" }));
    }
    tile.stateText.textContent = tile.root.dataset.connection === "failed" ? t("call.failed") : t("call.connecting");
  }
}
