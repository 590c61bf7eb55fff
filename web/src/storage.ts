// What the client remembers between visits (nickname, default-name seed, language, chosen camera
// and microphone), through localStorage, failing quietly where storage is unavailable (private
// modes, blocked cookies).

const PREFIX = "noom.";

export type StoredKey = "nickname" | "nameSeed" | "lang" | "camera" | "mic";

export function load(key: StoredKey): string | null {
  try {
    return window.localStorage.getItem(PREFIX + key);
  } catch {
    return null;
  }
}

export function save(key: StoredKey, value: string): void {
  try {
    window.localStorage.setItem(PREFIX + key, value);
  } catch {
    // Storage is unavailable: the value lasts for this visit only.
  }
}
