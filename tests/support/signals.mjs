// Signalling payloads for the tests: a small session description, an ICE candidate, and the media
// state of someone in a call with everything off.

export const SDP = "v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\n";

export const CANDIDATE = {
  candidate: "candidate:842163049 1 udp 1677729535 192.0.2.10 46154 typ srflx raddr 0.0.0.0 rport 0 generation 0",
  sdpMid: "0",
  sdpMLineIndex: 0,
  usernameFragment: "Ywzk",
};

export const OFF = Object.freeze({ audio: false, video: false, screen: false });
