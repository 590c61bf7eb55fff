// The two kinds of address the client lives at: "/" (the lobby) and "/r/<room>" (a room's link).

export type Route = { kind: "lobby" } | { kind: "room"; room: string };

const ROOM_PREFIX = "/r/";

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/** Reads a location's pathname. "/r/<room>" gives the URL-decoded room; anything else the lobby. */
export function parseRoute(pathname: string): Route {
  if (pathname.startsWith(ROOM_PREFIX)) {
    const room = safeDecode(pathname.slice(ROOM_PREFIX.length));
    if (room !== "") return { kind: "room", room };
  }
  return { kind: "lobby" };
}

export function roomPath(room: string): string {
  return ROOM_PREFIX + encodeURIComponent(room);
}

/** The shareable link of a room, e.g. "https://noom.example/r/coffee%20break". */
export function roomUrl(origin: string, room: string): string {
  return origin + roomPath(room);
}

/** The host key a host link carries (`?host=<key>`), if any. */
export function hostKeyOf(search: string): string | null {
  const key = new URLSearchParams(search).get("host");
  return key && key.length <= 64 ? key : null;
}

/** A room's host link: whoever opens it hosts the room. */
export function hostUrl(origin: string, room: string, key: string): string {
  return `${roomUrl(origin, room)}?host=${encodeURIComponent(key)}`;
}

export function lobbyPath(): string {
  return "/";
}

export function routePath(route: Route): string {
  return route.kind === "room" ? roomPath(route.room) : lobbyPath();
}
