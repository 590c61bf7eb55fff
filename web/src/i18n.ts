// User-interface strings in English and Korean, language choice, and placeholder filling
// (no DOM: the page applies them through lang.ts).

export type Lang = "en" | "ko";
export const LANGS: readonly Lang[] = ["en", "ko"];

const en = {
  "app.tagline": "Rooms to talk in, right in your browser",
  "lang.label": "Language",
  "status.connected": "Connected",
  "status.disconnected": "Disconnected",
  "status.reconnecting": "Reconnecting…",
  "status.connecting": "Connecting…",

  "lobby.joinTitle": "Enter a room",
  "lobby.inviteTitle": "You're invited to {room}",
  "lobby.inviteHint": "Pick a nickname, then enter.",
  "lobby.nickname": "Your nickname",
  "lobby.roomName": "Room name",
  "lobby.roomPlaceholder": "e.g. coffee-break",
  "lobby.unlisted": "Unlisted room",
  "lobby.unlistedHint": "It won't appear in the list; share its link instead.",
  "lobby.enter": "Enter room",
  "lobby.entering": "Entering…",
  "lobby.directoryTitle": "Open rooms",
  "lobby.directoryEmpty": "No open rooms yet. Start one above!",
  "lobby.directoryMore": "Showing the {shown} largest rooms.",
  "lobby.enterRoomAria": "Enter {room}, {count} people",
  "lobby.peopleShort": "people",

  "room.online": "online",
  "room.unlisted": "Unlisted",
  "room.participants": "People",
  "room.you": "you",
  "room.leave": "Leave",
  "room.copyLink": "Copy link",
  "room.copied": "Copied",
  "room.youAre": "You are",
  "room.rename": "Rename",
  "room.renameLabel": "New nickname",
  "room.renameSave": "Save",
  "room.renameCancel": "Cancel",
  "room.chat": "Chat",
  "room.messageLabel": "Message",
  "room.messagePlaceholder": "Write a message…",
  "room.messageHint": "Enter sends; Shift+Enter starts a new line",
  "room.send": "Send",

  "msg.sending": "Sending…",
  "msg.failed": "Not sent: {reason}",
  "msg.retry": "Retry",
  "msg.edit": "Edit",

  "sys.welcome": "You joined {room}",
  "sys.joined": "{name} joined",
  "sys.left": "{name} left",
  "sys.renamed": "{old} is now {new}",
  "sys.selfRenamed": "You are now {name}",
  "sys.connectionLost": "Connection lost. Reconnecting…",
  "sys.rejoined": "Reconnected",

  "error.dismiss": "Dismiss",
  "error.copyFailed": "Couldn't copy the link. Here it is: {url}",
  "error.bad_request": "The server did not understand that request.",
  "error.invalid_nickname": "A nickname must be 1 to 32 characters, without control characters.",
  "error.invalid_room": "A room name must be 1 to 64 characters, without control characters.",
  "error.invalid_message": "A message must be 1 to 2,000 characters and not only spaces.",
  "error.not_in_room": "You are not in that room.",
  "error.rate_limited": "You're sending too fast. Wait a moment and try again.",
  "error.too_many_rooms": "You are in too many rooms at once.",
  "error.overloaded": "The server is still busy with your earlier requests. Try again.",
  "error.disconnected": "Not connected to the server.",
  "error.timeout": "The server did not answer in time.",
  "error.unknown": "Something went wrong: {message}",
} as const;

export type Key = keyof typeof en;

const ko: Record<Key, string> = {
  "app.tagline": "브라우저에서 바로 대화하는 방",
  "lang.label": "언어",
  "status.connected": "연결됨",
  "status.disconnected": "연결 끊김",
  "status.reconnecting": "다시 연결하는 중…",
  "status.connecting": "연결하는 중…",

  "lobby.joinTitle": "방에 들어가기",
  "lobby.inviteTitle": "{room} 방에 초대받았어요",
  "lobby.inviteHint": "닉네임을 정하고 들어가세요.",
  "lobby.nickname": "닉네임",
  "lobby.roomName": "방 이름",
  "lobby.roomPlaceholder": "예: 커피-타임",
  "lobby.unlisted": "비공개 방",
  "lobby.unlistedHint": "목록에 나오지 않아요. 링크로 초대하세요.",
  "lobby.enter": "들어가기",
  "lobby.entering": "들어가는 중…",
  "lobby.directoryTitle": "열린 방",
  "lobby.directoryEmpty": "아직 열린 방이 없어요. 위에서 새로 만들어 보세요!",
  "lobby.directoryMore": "가장 큰 방 {shown}개를 보여 줘요.",
  "lobby.enterRoomAria": "{room} 방 들어가기, {count}명",
  "lobby.peopleShort": "명",

  "room.online": "명 접속 중",
  "room.unlisted": "비공개",
  "room.participants": "참여자",
  "room.you": "나",
  "room.leave": "나가기",
  "room.copyLink": "링크 복사",
  "room.copied": "복사됨",
  "room.youAre": "내 이름",
  "room.rename": "이름 바꾸기",
  "room.renameLabel": "새 닉네임",
  "room.renameSave": "저장",
  "room.renameCancel": "취소",
  "room.chat": "채팅",
  "room.messageLabel": "메시지",
  "room.messagePlaceholder": "메시지를 입력하세요…",
  "room.messageHint": "Enter로 보내고 Shift+Enter로 줄을 바꿔요",
  "room.send": "보내기",

  "msg.sending": "보내는 중…",
  "msg.failed": "전송 실패: {reason}",
  "msg.retry": "다시 보내기",
  "msg.edit": "고치기",

  "sys.welcome": "{room} 방에 들어왔어요",
  "sys.joined": "{name} 님이 들어왔어요",
  "sys.left": "{name} 님이 나갔어요",
  "sys.renamed": "{old} 님이 {new:ro} 이름을 바꿨어요",
  "sys.selfRenamed": "이제 {name:ro} 불려요",
  "sys.connectionLost": "연결이 끊겼어요. 다시 연결하는 중…",
  "sys.rejoined": "다시 연결됐어요",

  "error.dismiss": "닫기",
  "error.copyFailed": "링크를 복사하지 못했어요. 링크: {url}",
  "error.bad_request": "서버가 요청을 이해하지 못했어요.",
  "error.invalid_nickname": "닉네임은 제어 문자 없이 1~32자여야 해요.",
  "error.invalid_room": "방 이름은 제어 문자 없이 1~64자여야 해요.",
  "error.invalid_message": "메시지는 1~2,000자이고 공백만으로 이루어지면 안 돼요.",
  "error.not_in_room": "그 방에 있지 않아요.",
  "error.rate_limited": "너무 빨리 보내고 있어요. 잠시 후 다시 시도하세요.",
  "error.too_many_rooms": "동시에 너무 많은 방에 들어가 있어요.",
  "error.overloaded": "서버가 이전 요청을 처리하는 중이에요. 다시 시도하세요.",
  "error.disconnected": "서버에 연결되어 있지 않아요.",
  "error.timeout": "서버가 제때 응답하지 않았어요.",
  "error.unknown": "문제가 생겼어요: {message}",
};

const tables: Record<Lang, Record<Key, string>> = { en, ko };

export type Params = Record<string, string | number>;

export function isLang(v: unknown): v is Lang {
  return v === "en" || v === "ko";
}

export function isKey(v: string): v is Key {
  return Object.prototype.hasOwnProperty.call(en, v);
}

/** The stored choice if there is one, else Korean for a `ko*` browser language, else English. */
export function pickLanguage(stored: string | null | undefined, browser: string | null | undefined): Lang {
  if (isLang(stored)) return stored;
  if (typeof browser === "string" && browser.trim().toLowerCase().startsWith("ko")) return "ko";
  return "en";
}

/**
 * The Korean particle 로/으로 ("to, as") for a word: 로 after a vowel or ㄹ, 으로 after any other
 * final consonant, and "(으)로" when the word does not end in a Hangul syllable.
 */
export function particleRo(word: string): string {
  const last = word.trimEnd().codePointAt(word.trimEnd().length - 1);
  if (last === undefined || last < 0xac00 || last > 0xd7a3) {
    // A word ending in a digit or Latin letter: the reading decides, so offer both.
    return "(으)로";
  }
  const final = (last - 0xac00) % 28;
  return final === 0 || final === 8 ? "로" : "으로";
}

/** Fills `{name}` placeholders; `{name:ro}` appends the Korean particle that fits the value. */
export function fill(template: string, params: Params = {}): string {
  return template.replace(/\{(\w+)(?::(ro))?\}/g, (whole, name: string, particle?: string) => {
    if (!Object.prototype.hasOwnProperty.call(params, name)) return whole;
    const value = String(params[name]);
    return particle === "ro" ? value + particleRo(value) : value;
  });
}

export function translate(lang: Lang, key: Key, params?: Params): string {
  return fill(tables[lang][key] ?? en[key], params);
}

/** Every key, for checks that both languages are complete. */
export function allKeys(): Key[] {
  return Object.keys(en) as Key[];
}

export function rawTable(lang: Lang): Readonly<Record<Key, string>> {
  return tables[lang];
}
