// Preload for the TypeScript reference server (`node -r ./loopback.cjs ...`): it listens on
// all interfaces, and this workplace allows loopback traffic only, so force every
// net.Server.listen(port[, host]) onto 127.0.0.1.
const net = require("net");
const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  if (typeof args[0] === "number" || typeof args[0] === "string") {
    const port = args[0];
    const rest = args.slice(1).filter((a) => typeof a === "function" || typeof a === "object");
    const cb = rest.find((a) => typeof a === "function");
    return cb ? listen.call(this, port, "127.0.0.1", cb) : listen.call(this, port, "127.0.0.1");
  }
  if (args[0] && typeof args[0] === "object" && !Array.isArray(args[0])) {
    args[0] = { ...args[0], host: "127.0.0.1" };
  }
  return listen.apply(this, args);
};
