// One WebSocket to /api/events (Mailpit's event stream: {Type, Data} with "new",
// "update", "delete", "stats", "truncate", "prune"), shared by every view, reconnecting
// with a growing delay. Views subscribe with onMailEvent and learn whether the socket
// is up, so they can fall back to polling while it is not.

const listeners = new Set();
let socket = null;
let retryDelay = 500;
let connected = false;
let started = false;

function connect() {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  socket = new WebSocket(`${scheme}//${location.host}/api/events`);
  socket.addEventListener("open", () => {
    connected = true;
    retryDelay = 500;
    emit({ Type: "connected", Data: null });
  });
  socket.addEventListener("message", (message) => {
    let event;
    try {
      event = JSON.parse(message.data);
    } catch {
      return;
    }
    if (event && typeof event.Type === "string") emit(event);
  });
  socket.addEventListener("close", () => {
    const wasConnected = connected;
    connected = false;
    socket = null;
    if (wasConnected) emit({ Type: "disconnected", Data: null });
    setTimeout(connect, retryDelay);
    retryDelay = Math.min(retryDelay * 2, 5000);
  });
}

function emit(event) {
  for (const listener of listeners) {
    try {
      listener(event);
    } catch (error) {
      console.error(error);
    }
  }
}

/** Call ``listener({Type, Data})`` for every event; returns the unsubscribe function. */
export function onMailEvent(listener) {
  if (!started) {
    started = true;
    connect();
  }
  listeners.add(listener);
  return () => listeners.delete(listener);
}

export function mailEventsConnected() {
  return connected;
}
