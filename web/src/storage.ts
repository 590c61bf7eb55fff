// What the client remembers between visits (nickname, default-name seed, language, chosen camera
// and microphone, the data saver) through localStorage, and for one tab only (the admin page's token) through
// sessionStorage, failing quietly where storage is unavailable (private modes, blocked cookies).

const PREFIX = "noom.";

export type StoredKey = "nickname" | "nameSeed" | "lang" | "camera" | "mic" | "speaker" | "othersVideo";
/** Kept only while the tab is open: a secret should not outlive the visit. */
export type SessionKey = "adminToken" | `hostKey:${string}`;

function read(store: () => Storage, key: string): string | null {
  try {
    return store().getItem(PREFIX + key);
  } catch {
    return null;
  }
}

function write(store: () => Storage, key: string, value: string | null): void {
  try {
    if (value === null) store().removeItem(PREFIX + key);
    else store().setItem(PREFIX + key, value);
  } catch {
    // Storage is unavailable: the value lasts for this page only.
  }
}

export function load(key: StoredKey): string | null {
  return read(() => window.localStorage, key);
}

export function save(key: StoredKey, value: string): void {
  write(() => window.localStorage, key, value);
}

export function loadSession(key: SessionKey): string | null {
  return read(() => window.sessionStorage, key);
}

/** Stores a value for this tab, or forgets it (null). */
export function saveSession(key: SessionKey, value: string | null): void {
  write(() => window.sessionStorage, key, value);
}
