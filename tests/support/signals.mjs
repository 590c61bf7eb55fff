// Signalling payloads for the tests: a small session description, a browser's offer to the media
// server, an ICE candidate, and the media state of someone in a call with everything off.

export const SDP = "v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\n";

/** An offer as a browser makes it to the media server: one microphone, Opus. */
export const AUDIO_OFFER = [
  "v=0",
  "o=- 4611731400430051337 2 IN IP4 127.0.0.1",
  "s=-",
  "t=0 0",
  "a=group:BUNDLE 0",
  "a=msid-semantic: WMS",
  "m=audio 9 UDP/TLS/RTP/SAVPF 111",
  "c=IN IP4 0.0.0.0",
  "a=rtcp:9 IN IP4 0.0.0.0",
  "a=ice-ufrag:Ywzk",
  "a=ice-pwd:4Zb1ngIWvTDHNAAdgAzAjqUB",
  "a=ice-options:trickle",
  "a=fingerprint:sha-256 7B:8B:F0:65:5F:78:E2:51:3B:AC:6F:F3:3F:46:1B:35:DC:B8:5F:64:1A:24:C2:43:F0:A1:58:D0:A1:2C:19:08",
  "a=setup:actpass",
  "a=mid:0",
  "a=sendrecv",
  "a=msid:- mic",
  "a=rtcp-mux",
  "a=rtpmap:111 opus/48000/2",
  "a=fmtp:111 minptime=10;useinbandfec=1",
  "a=ssrc:1001 cname:test",
  "",
].join("\r\n");

/** The UDP port an answer from the media server (`sfu:join`'s) sends the browser to. */
export function mediaPortOf(answer) {
  if (typeof answer?.sdp !== "string") throw new Error(`not an answer: ${JSON.stringify(answer)}`);
  const candidate = answer.sdp.split("\r\n").find((line) => line.startsWith("a=candidate:"));
  if (!candidate) throw new Error(`no candidate in ${answer.sdp}`);
  return Number(candidate.split(" ")[5]);
}

export const CANDIDATE = {
  candidate: "candidate:842163049 1 udp 1677729535 192.0.2.10 46154 typ srflx raddr 0.0.0.0 rport 0 generation 0",
  sdpMid: "0",
  sdpMLineIndex: 0,
  usernameFragment: "Ywzk",
};

export const OFF = Object.freeze({ audio: false, video: false, screen: false });
