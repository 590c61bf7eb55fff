// The benchmark's reference: the original tutorial's chat server on Node.js and Socket.IO 4,
// with its chat events and their behaviour unchanged (see the seed protocol). Only what serves
// no chat event is left out: the Express pages, the per-event console log and the admin UI,
// which would each cost the reference CPU that the original spent on things beside chat.
//
//   node --expose-gc server.js [PORT]     (or PORT=... ; 0 or nothing picks a free port)
//
// Prints "reference listening on http://ADDR" once it accepts connections. With --expose-gc,
// SIGUSR2 runs a full garbage collection, so that memory can be measured once settled.

"use strict";

const http = require("node:http");
const { Server } = require("socket.io");

const port = Number(process.argv[2] ?? process.env.PORT ?? 0);
const host = process.env.HOST ?? "127.0.0.1";

const httpServer = http.createServer((req, res) => {
  res.writeHead(404).end();
});
const wsServer = new Server(httpServer);

// Public rooms are the adapter's rooms that are not a socket's own room, as the original listed them.
function publicRooms() {
  const { sids, rooms } = wsServer.sockets.adapter;
  const names = [];
  rooms.forEach((_, key) => {
    if (sids.get(key) === undefined) names.push(key);
  });
  return names;
}

function countRoom(roomName) {
  return wsServer.sockets.adapter.rooms.get(roomName)?.size;
}

wsServer.on("connection", (socket) => {
  socket.nickname = "Anon";
  socket.on("enter_room", (roomName, done) => {
    socket.join(roomName);
    done();
    socket.to(roomName).emit("welcome", socket.nickname, countRoom(roomName));
    wsServer.sockets.emit("room_change", publicRooms());
  });
  socket.on("disconnecting", () => {
    socket.rooms.forEach((room) => socket.to(room).emit("bye", socket.nickname, countRoom(room) - 1));
  });
  socket.on("disconnect", () => {
    wsServer.sockets.emit("room_change", publicRooms());
  });
  socket.on("new_message", (msg, room, done) => {
    socket.to(room).emit("new_message", `${socket.nickname}: ${msg}`);
    done();
  });
  socket.on("nickname", (nickname) => {
    socket.nickname = nickname;
  });
});

if (typeof global.gc === "function") {
  process.on("SIGUSR2", () => global.gc());
}
process.on("SIGTERM", () => process.exit(0));

httpServer.listen(port, host, () => {
  const { address, port: bound } = httpServer.address();
  console.log(`reference listening on http://${address}:${bound}`);
});
