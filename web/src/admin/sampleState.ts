// A well-formed admin state for the admin page's tests: two nodes, two rooms, one person in
// both of them and in one call.
import type { AdminState } from "./api";

export const sampleState: AdminState = {
  version: 7,
  node: "n1",
  redis: "up",
  connections: 4,
  nodes: [
    { id: "n1", self: true, people: 2 },
    { id: "n2", self: false, people: 1 },
  ],
  rooms: [
    {
      name: "standup",
      unlisted: false,
      count: 2,
      inCall: 1,
      participants: [
        { id: "a", nickname: "Rosa", node: "n1", call: { audio: true, video: false, screen: false } },
        { id: "b", nickname: "Bob", node: "n2" },
      ],
    },
    {
      name: "secret",
      unlisted: true,
      count: 1,
      inCall: 0,
      participants: [{ id: "a", nickname: "Rosa", node: "n1" }],
    },
  ],
};
