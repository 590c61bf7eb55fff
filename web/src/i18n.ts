// User-interface strings in English and Korean (the client's and the admin page's), language
// choice, and placeholder filling (no DOM: the pages apply them through lang.ts).

export type Lang = "en" | "ko";
export const LANGS: readonly Lang[] = ["en", "ko"];

const en = {
  "app.tagline": "Rooms to talk in, right in your browser",
  "lang.label": "Language",
  "status.connected": "Connected",
  "status.disconnected": "Disconnected",
  "status.reconnecting": "Reconnecting…",
  "status.restarting": "Server restarting…",
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

  "call.join": "Join call",
  "call.joinCount": "Join call · {count} in it",
  "call.full": "Call full ({count}/{limit})",
  "call.title": "Call",
  "call.previewTitle": "Ready to join?",
  "call.previewHint": "Check your camera and microphone first. You can change them during the call.",
  "call.cameraLabel": "Camera",
  "call.micLabel": "Microphone",
  "call.start": "Join now",
  "call.cancel": "Cancel",
  "call.cameraOff": "Your camera is off",
  "call.mic": "Microphone",
  "call.camera": "Camera",
  "call.screen": "Share screen",
  "call.settings": "Devices",
  "call.leave": "Leave call",
  "call.controls": "Call controls",
  "call.micHint": "Turn your microphone on or off",
  "call.cameraHint": "Turn your camera on or off",
  "call.screenHint": "Share your screen, a window or a tab",
  "call.settingsHint": "Choose your camera and microphone",
  "call.muted": "Muted",
  "call.connecting": "Connecting…",
  "call.failed": "Connection failed",
  "call.fullMessage": "This call is full ({limit} people). You can still chat.",
  "call.joinFailed": "Couldn't join the call: {reason}",
  "call.noCamera": "No camera found",
  "call.noMic": "No microphone found",
  "call.deviceCamera": "Camera {n}",
  "call.deviceMic": "Microphone {n}",
  "call.screenFailed": "Screen sharing didn't start.",
  "call.autoplay": "Click anywhere on the page to hear the others.",
  "call.lost": "The call's connection was lost. Join again when your network is back.",
  "call.page": "Page {page} of {pages}",
  "call.othersVideo": "Video of others (data saver)",
  "call.othersVideoAll": "Everyone on screen",
  "call.othersVideoSpeaker": "Only who is speaking",
  "call.othersVideoNone": "None: audio only",
  "call.previousPage": "Previous page of people",
  "call.nextPage": "Next page of people",
  "call.dismiss": "Dismiss",

  "media.blocked.all": "Camera and microphone are blocked for this site. You can still join to see and hear the others.",
  "media.blocked.camera": "The camera is blocked for this site, so the others will only hear you.",
  "media.blocked.mic": "The microphone is blocked for this site, so the others will only see you.",
  "media.missing.all": "No camera or microphone found. You can still join to see and hear the others.",
  "media.missing.camera": "No camera found, so the others will only hear you.",
  "media.missing.mic": "No microphone found, so the others will only see you.",
  "media.unavailable.all": "Couldn't start the camera or microphone (another app may be using them). You can still join to see and hear the others.",
  "media.unavailable.camera": "Couldn't start the camera (another app may be using it), so the others will only hear you.",
  "media.unavailable.mic": "Couldn't start the microphone (another app may be using it), so the others will only see you.",
  "media.unsupported": "This browser can't use a camera or microphone on this page (it needs HTTPS). You can still join to see and hear the others.",

  "people.inCall": "In the call",
  "people.micOn": "Microphone on",
  "people.micOff": "Microphone off",
  "people.camOn": "Camera on",
  "people.camOff": "Camera off",
  "people.screen": "Sharing their screen",

  "sys.welcome": "You joined {room}",
  "sys.joined": "{name} joined",
  "sys.left": "{name} left",
  "sys.renamed": "{old} is now {new}",
  "sys.selfRenamed": "You are now {name}",
  "sys.connectionLost": "Connection lost. Reconnecting…",
  "sys.rejoined": "Reconnected",

  "error.dismiss": "Dismiss",
  "error.copyFailed": "Couldn't copy the link. Here it is: {url}",
  "error.roomClosedByAdmin": "An administrator closed the room “{room}”.",
  "error.roomClosed": "The room “{room}” was closed.",
  "error.disconnectedByAdmin": "An administrator disconnected you. Reload the page to come back.",
  "error.disconnectedByServer": "The server disconnected you. Reload the page to come back.",
  "error.bad_request": "The server did not understand that request.",
  "error.invalid_nickname": "A nickname must be 1 to 32 characters, without control characters.",
  "error.invalid_room": "A room name must be 1 to 64 characters, without control characters.",
  "error.invalid_message": "A message must be 1 to 2,000 characters and not only spaces.",
  "error.not_in_room": "You are not in that room.",
  "error.rate_limited": "You're sending too fast. Wait a moment and try again.",
  "error.too_many_rooms": "You are in too many rooms at once.",
  "error.overloaded": "The server is still busy with your earlier requests. Try again.",
  "error.not_in_call": "You are not in that call.",
  "error.peer_unavailable": "That person is no longer in the call.",
  "error.call_full": "The call is full.",
  "error.invalid_signal": "The call's connection details were refused.",
  "error.disconnected": "Not connected to the server.",
  "error.timeout": "The server did not answer in time.",
  "error.unknown": "Something went wrong: {message}",

  "admin.title": "Noom admin",
  "admin.signInTitle": "Sign in to the admin panel",
  "admin.signInHint": "Enter the admin token this server was started with.",
  "admin.token": "Admin token",
  "admin.signIn": "Sign in",
  "admin.signingIn": "Signing in…",
  "admin.signOut": "Sign out",
  "admin.tokenMissing": "Enter the admin token.",
  "admin.wrongToken": "That token is not right.",
  "admin.unreachable": "Couldn't reach the server. Try again.",
  "admin.live": "Live",
  "admin.retrying": "Connection lost, retrying…",
  "admin.node": "This node",
  "admin.redis": "Link to other nodes",
  "admin.redisOff": "None (single node)",
  "admin.redisUp": "Up",
  "admin.redisDown": "Down",
  "admin.connections": "Connections here",
  "admin.nodes": "Nodes",
  "admin.thisNode": "this node",
  "admin.nodePeople": "{count} in rooms",
  "admin.onNode": "Connected to node {node}",
  "admin.rooms": "Rooms",
  "admin.peopleInRooms": "People in rooms",
  "admin.peopleInCalls": "People in calls",
  "admin.empty": "No open rooms.",
  "admin.roomCounts": "{count} in the room · {inCall} in the call",
  "admin.people": "People in {room}",
  "admin.notInCall": "Not in the call",
  "admin.mediaSends": "Sends {rate}: {layers}",
  "admin.mediaReceives": "Receives {count} of {of} videos ({layers}), {rate}, {loss} lost",
  "admin.mediaEstimate": "Bandwidth estimate {rate}",
  "admin.mediaConnecting": "Connecting to the media server…",
  "admin.closeRoom": "Close room",
  "admin.disconnect": "Disconnect",
  "admin.confirmClose": "Close the room “{room}”? Everyone in it goes back to the lobby.",
  "admin.confirmDisconnect": "Disconnect {name}? Their page stays disconnected until they reload it.",
  "admin.closed": "Closed “{room}” ({people} people).",
  "admin.closedOne": "Closed “{room}” (1 person).",
  "admin.disconnected": "Disconnected {name}.",
  "admin.failed": "That didn't work: {message}",
} as const;

export type Key = keyof typeof en;

const ko: Record<Key, string> = {
  "app.tagline": "브라우저에서 바로 대화하는 방",
  "lang.label": "언어",
  "status.connected": "연결됨",
  "status.disconnected": "연결 끊김",
  "status.reconnecting": "다시 연결하는 중…",
  "status.restarting": "서버를 다시 시작하는 중…",
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

  "call.join": "통화 참여",
  "call.joinCount": "통화 참여 · {count}명 참여 중",
  "call.full": "통화 인원 꽉 참 ({count}/{limit})",
  "call.title": "통화",
  "call.previewTitle": "참여할 준비가 됐나요?",
  "call.previewHint": "카메라와 마이크를 먼저 확인하세요. 통화 중에도 바꿀 수 있어요.",
  "call.cameraLabel": "카메라",
  "call.micLabel": "마이크",
  "call.start": "지금 참여",
  "call.cancel": "취소",
  "call.cameraOff": "카메라가 꺼져 있어요",
  "call.mic": "마이크",
  "call.camera": "카메라",
  "call.screen": "화면 공유",
  "call.settings": "장치",
  "call.leave": "통화 나가기",
  "call.controls": "통화 조작",
  "call.micHint": "마이크 켜기/끄기",
  "call.cameraHint": "카메라 켜기/끄기",
  "call.screenHint": "화면, 창 또는 탭 공유",
  "call.settingsHint": "카메라와 마이크 선택",
  "call.muted": "음소거됨",
  "call.connecting": "연결하는 중…",
  "call.failed": "연결 실패",
  "call.fullMessage": "통화 인원이 가득 찼어요(최대 {limit}명). 채팅은 계속할 수 있어요.",
  "call.joinFailed": "통화에 참여하지 못했어요: {reason}",
  "call.noCamera": "카메라를 찾지 못했어요",
  "call.noMic": "마이크를 찾지 못했어요",
  "call.deviceCamera": "카메라 {n}",
  "call.deviceMic": "마이크 {n}",
  "call.screenFailed": "화면 공유를 시작하지 못했어요.",
  "call.autoplay": "페이지 아무 곳이나 클릭하면 다른 사람의 소리가 들려요.",
  "call.lost": "통화 연결이 끊겼어요. 네트워크가 돌아오면 다시 참여하세요.",
  "call.page": "{pages}쪽 중 {page}쪽",
  "call.othersVideo": "다른 사람 영상 (데이터 절약)",
  "call.othersVideoAll": "화면에 보이는 모두",
  "call.othersVideoSpeaker": "말하는 사람만",
  "call.othersVideoNone": "없음: 소리만",
  "call.previousPage": "참여자 이전 쪽",
  "call.nextPage": "참여자 다음 쪽",
  "call.dismiss": "닫기",

  "media.blocked.all": "이 사이트에서 카메라와 마이크가 차단되어 있어요. 그래도 참여해서 다른 사람을 보고 들을 수 있어요.",
  "media.blocked.camera": "이 사이트에서 카메라가 차단되어 있어서 다른 사람에게는 목소리만 들려요.",
  "media.blocked.mic": "이 사이트에서 마이크가 차단되어 있어서 다른 사람에게는 모습만 보여요.",
  "media.missing.all": "카메라와 마이크를 찾지 못했어요. 그래도 참여해서 다른 사람을 보고 들을 수 있어요.",
  "media.missing.camera": "카메라를 찾지 못해서 다른 사람에게는 목소리만 들려요.",
  "media.missing.mic": "마이크를 찾지 못해서 다른 사람에게는 모습만 보여요.",
  "media.unavailable.all": "카메라와 마이크를 켜지 못했어요(다른 앱이 쓰고 있을 수 있어요). 그래도 참여해서 다른 사람을 보고 들을 수 있어요.",
  "media.unavailable.camera": "카메라를 켜지 못해서(다른 앱이 쓰고 있을 수 있어요) 다른 사람에게는 목소리만 들려요.",
  "media.unavailable.mic": "마이크를 켜지 못해서(다른 앱이 쓰고 있을 수 있어요) 다른 사람에게는 모습만 보여요.",
  "media.unsupported": "이 브라우저는 이 페이지에서 카메라나 마이크를 쓸 수 없어요(HTTPS가 필요해요). 그래도 참여해서 다른 사람을 보고 들을 수 있어요.",

  "people.inCall": "통화 중",
  "people.micOn": "마이크 켜짐",
  "people.micOff": "마이크 꺼짐",
  "people.camOn": "카메라 켜짐",
  "people.camOff": "카메라 꺼짐",
  "people.screen": "화면 공유 중",

  "sys.welcome": "{room} 방에 들어왔어요",
  "sys.joined": "{name} 님이 들어왔어요",
  "sys.left": "{name} 님이 나갔어요",
  "sys.renamed": "{old} 님이 {new:ro} 이름을 바꿨어요",
  "sys.selfRenamed": "이제 {name:ro} 불려요",
  "sys.connectionLost": "연결이 끊겼어요. 다시 연결하는 중…",
  "sys.rejoined": "다시 연결됐어요",

  "error.dismiss": "닫기",
  "error.copyFailed": "링크를 복사하지 못했어요. 링크: {url}",
  "error.roomClosedByAdmin": "관리자가 “{room}” 방을 닫았어요.",
  "error.roomClosed": "“{room}” 방이 닫혔어요.",
  "error.disconnectedByAdmin": "관리자가 연결을 끊었어요. 다시 들어오려면 페이지를 새로 고치세요.",
  "error.disconnectedByServer": "서버가 연결을 끊었어요. 다시 들어오려면 페이지를 새로 고치세요.",
  "error.bad_request": "서버가 요청을 이해하지 못했어요.",
  "error.invalid_nickname": "닉네임은 제어 문자 없이 1~32자여야 해요.",
  "error.invalid_room": "방 이름은 제어 문자 없이 1~64자여야 해요.",
  "error.invalid_message": "메시지는 1~2,000자이고 공백만으로 이루어지면 안 돼요.",
  "error.not_in_room": "그 방에 있지 않아요.",
  "error.rate_limited": "너무 빨리 보내고 있어요. 잠시 후 다시 시도하세요.",
  "error.too_many_rooms": "동시에 너무 많은 방에 들어가 있어요.",
  "error.overloaded": "서버가 이전 요청을 처리하는 중이에요. 다시 시도하세요.",
  "error.not_in_call": "그 통화에 참여하고 있지 않아요.",
  "error.peer_unavailable": "그 사람은 이제 통화에 없어요.",
  "error.call_full": "통화 인원이 가득 찼어요.",
  "error.invalid_signal": "통화 연결 정보가 거부됐어요.",
  "error.disconnected": "서버에 연결되어 있지 않아요.",
  "error.timeout": "서버가 제때 응답하지 않았어요.",
  "error.unknown": "문제가 생겼어요: {message}",

  "admin.title": "Noom 관리",
  "admin.mediaSends": "보내는 중 {rate}: {layers}",
  "admin.mediaReceives": "영상 {of}개 중 {count}개 받는 중 ({layers}), {rate}, 손실 {loss}",
  "admin.mediaEstimate": "대역폭 추정 {rate}",
  "admin.mediaConnecting": "미디어 서버에 연결하는 중…",
  "admin.signInTitle": "관리자 로그인",
  "admin.signInHint": "이 서버를 시작할 때 정한 관리자 토큰을 입력하세요.",
  "admin.token": "관리자 토큰",
  "admin.signIn": "로그인",
  "admin.signingIn": "로그인하는 중…",
  "admin.signOut": "로그아웃",
  "admin.tokenMissing": "관리자 토큰을 입력하세요.",
  "admin.wrongToken": "토큰이 맞지 않아요.",
  "admin.unreachable": "서버에 연결하지 못했어요. 다시 시도하세요.",
  "admin.live": "실시간",
  "admin.retrying": "연결이 끊겼어요. 다시 시도하는 중…",
  "admin.node": "이 노드",
  "admin.redis": "다른 노드와의 연결",
  "admin.redisOff": "없음(단일 노드)",
  "admin.redisUp": "연결됨",
  "admin.redisDown": "끊김",
  "admin.connections": "이 노드의 연결",
  "admin.nodes": "노드",
  "admin.thisNode": "이 노드",
  "admin.nodePeople": "방에 {count}명",
  "admin.onNode": "{node} 노드에 연결됨",
  "admin.rooms": "방",
  "admin.peopleInRooms": "방에 있는 사람",
  "admin.peopleInCalls": "통화 중인 사람",
  "admin.empty": "열린 방이 없어요.",
  "admin.roomCounts": "방에 {count}명 · 통화에 {inCall}명",
  "admin.people": "{room} 방의 사람들",
  "admin.notInCall": "통화에 없음",
  "admin.closeRoom": "방 닫기",
  "admin.disconnect": "연결 끊기",
  "admin.confirmClose": "“{room}” 방을 닫을까요? 안에 있는 사람은 모두 로비로 돌아가요.",
  "admin.confirmDisconnect": "{name} 님의 연결을 끊을까요? 페이지를 새로 고칠 때까지 연결이 끊긴 채로 있어요.",
  "admin.closed": "“{room}” 방을 닫았어요({people}명).",
  "admin.closedOne": "“{room}” 방을 닫았어요(1명).",
  "admin.disconnected": "{name} 님의 연결을 끊었어요.",
  "admin.failed": "하지 못했어요: {message}",
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
