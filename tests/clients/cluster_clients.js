#!/usr/bin/env node
// A real cluster client (ioredis's Redis.Cluster or valkey-glide's
// GlideClusterClient) started at one seed address, driven through a fixed
// workload; prints one JSON report as the last line of stdout.
// tests/integration/test_cluster_clients.py runs it against the proxies of a
// ValkeyCluster (cluster_util.py) and judges the report.
//
//   node cluster_clients.js --client ioredis|glide --seed PORT[,PORT...]
//                           [--keys N] [--timeout-ms MS] [--tag TEXT]
//
// Workload, in order:
//   1. connect in cluster mode to the seed(s) only;
//   2. CLUSTER SLOTS and CLUSTER SHARDS through the client (glide: RESP3);
//   3. one key at the first slot of every slot range, written and read back;
//   4. N keys over all slots, written concurrently, then read back;
//   5. a MULTI/EXEC on one hash tag, its keys read back; glide also a
//      non-atomic batch (a pipeline split over the nodes);
//   6. redirection: a command sent on purpose to a primary that does not own
//      the key's slot; the MOVED it gets is recorded, and the client's own
//      MOVED handling is exercised (ioredis: a slot-cache entry pointed at
//      the wrong node, then a plain SET through the cluster client);
//   7. replica reads: a second client of the same kind that reads from
//      replicas (READONLY on its replica connections) reads step 3's keys,
//      each polled until it has replicated or the deadline passes.
// What the report says about addressing:
//   socket_ports   remote ports of the TCP sockets this process holds at
//                  each step's end, read from /proc (the native connections
//                  glide's core opens too; one that lives within a step is
//                  missed: /proc/net/tcp lists every socket of the machine,
//                  too long to read every few ms on a busy one);
//   client_nodes   the nodes the client itself lists (ioredis nodes("all"),
//                  glide: the addresses of a command routed to all nodes);
//   topology       CLUSTER SLOTS / SHARDS as the client received them.
// Every connect() attempt, however short-lived, is recorded outside the
// script: run it with LD_PRELOAD=libconnectlog.so DP_CONNECT_LOG=FILE
// (tests/tools/libconnectlog.c), as the test does.
// Exit status: 0 when the workload ran to its end (the report's counts say
// whether it went right), 2 on a fatal error or the deadline (the report has
// "fatal" naming the step).
"use strict";

const fs = require("fs");
const path = require("path");

// ---------------------------------------------------------------- arguments
function parseArgs(argv) {
  const out = { client: null, seeds: [], keys: 2000, timeoutMs: 60000, tag: String(process.pid) };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const v = argv[i + 1];
    if (a === "--client") { out.client = v; i++; }
    else if (a === "--seed") { out.seeds = v.split(",").map(Number); i++; }
    else if (a === "--keys") { out.keys = Number(v); i++; }
    else if (a === "--timeout-ms") { out.timeoutMs = Number(v); i++; }
    else if (a === "--tag") { out.tag = v; i++; }
    else throw new Error("cluster_clients.js: unknown argument " + JSON.stringify(a));
  }
  if (out.client !== "ioredis" && out.client !== "glide") {
    throw new Error("cluster_clients.js: --client must be ioredis or glide, got " + JSON.stringify(out.client));
  }
  if (!out.seeds.length || out.seeds.some((p) => !(p > 0 && p < 65536))) {
    throw new Error("cluster_clients.js: --seed needs port numbers, got " + JSON.stringify(out.seeds));
  }
  return out;
}

const HOST = "127.0.0.1";
const args = (() => {
  try { return parseArgs(process.argv.slice(2)); } catch (e) {
    process.stdout.write(JSON.stringify({ fatal: e.message, step: "arguments" }) + "\n");
    process.exit(2);
  }
})();

// The report, filled in as the workload goes.
const report = {
  client: args.client,
  version: null,
  node_version: process.version,
  seed_ports: args.seeds,
  step: "start",
  step_ms: {},
  topology: { slots: [], slots_ports: [], shards_ports: [] },
  client_nodes: [],
  socket_ports: [],
  ranges: [],
  keys: { written: 0, acknowledged: 0, read: 0, mismatched: 0, examples: [] },
  transaction: null,
  batch: null,
  moved: null,
  replica_reads: null,
  redirections: [],
  errors: [],
  fatal: null,
};

function packageVersion(name) {
  // The version of the copy require() loads (walk up from its entry point).
  let dir = path.dirname(require.resolve(name));
  for (;;) {
    const file = path.join(dir, "package.json");
    if (fs.existsSync(file)) {
      const pkg = JSON.parse(fs.readFileSync(file, "utf8"));
      if (pkg.name === name) return pkg.version;
    }
    const up = path.dirname(dir);
    if (up === dir) return null;
    dir = up;
  }
}

// ------------------------------------------------------------ socket watch
// Remote ports of this process's TCP sockets: /proc/self/fd names the socket
// inodes, /proc/self/net/tcp{,6} maps inodes to addresses (hex, port last).
const socketPorts = new Set();
function sampleSockets() {
  const inodes = new Set();
  let fds = [];
  try { fds = fs.readdirSync("/proc/self/fd"); } catch (e) { return; }
  for (const fd of fds) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(fs.readlinkSync("/proc/self/fd/" + fd));
      if (m) inodes.add(m[1]);
    } catch (e) { /* closed meanwhile */ }
  }
  for (const table of ["/proc/self/net/tcp", "/proc/self/net/tcp6"]) {
    let text = "";
    try { text = fs.readFileSync(table, "utf8"); } catch (e) { continue; }
    for (const line of text.split("\n").slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 10 || !inodes.has(f[9])) continue;
      const remotePort = parseInt(f[2].split(":")[1], 16);
      if (remotePort) socketPorts.add(remotePort);
    }
  }
}

// ------------------------------------------------------------------ helpers
const slotOf = require("cluster-key-slot");

function keyInSlot(prefix, slot) {
  for (let i = 0; ; i++) {
    const k = prefix + ":" + i;
    if (slotOf(k) === slot) return k;
  }
}

function noteError(where, e) {
  const text = String((e && e.message) || e);
  const entry = { where, error: text };
  report.errors.push(entry);
  if (/\b(MOVED|ASK|TRYAGAIN|CLUSTERDOWN)\b/.test(text)) report.redirections.push(entry);
}

// Every "port" field (number or string) in a reply of any shape: RESP3 maps
// come back from glide as arrays of {key, value}, RESP2 as flat lists.
function portsIn(value, out = new Set()) {
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const v = value[i];
      if ((String(v) === "port") && i + 1 < value.length && !Array.isArray(value[i + 1])) {
        out.add(Number(value[i + 1]));
      }
      portsIn(v, out);
    }
  } else if (value && typeof value === "object") {
    if ("key" in value && "value" in value && Object.keys(value).length === 2) {
      if (String(value.key) === "port") out.add(Number(value.value));
      portsIn(value.value, out);
    } else {
      for (const [k, v] of Object.entries(value)) {
        if (k === "port" && !Array.isArray(v) && typeof v !== "object") out.add(Number(v));
        else portsIn(v, out);
      }
    }
  }
  return out;
}

// CLUSTER SLOTS as [{start, end, ports: [primary, replicas...]}].
function parseSlots(reply) {
  return reply.map((e) => ({
    start: Number(e[0]), end: Number(e[1]),
    ports: e.slice(2).map((n) => Number(n[1])),
  })).sort((a, b) => a.start - b.start);
}

function ownerPort(slots, slot) {
  const r = slots.find((s) => s.start <= slot && slot <= s.end);
  return r ? r.ports[0] : null;
}

// Promises of fn(i) for i < n, at most `width` in flight.
async function inWaves(n, width, fn) {
  const out = new Array(n);
  for (let i = 0; i < n; i += width) {
    const wave = [];
    for (let j = i; j < Math.min(n, i + width); j++) wave.push(fn(j).then((v) => { out[j] = v; }));
    await Promise.all(wave);
  }
  return out;
}

// Reads every [key, value] with read(key) until it answers value (a replica
// may not have it yet) or the deadline (Date.now() ms) passes.
async function pollReads(pairs, deadline, read) {
  const out = { keys: pairs.length, ok: 0, reads: 0, missing: [] };
  for (const [k, want] of pairs) {
    let got;
    for (;;) {
      out.reads++;
      try { got = await read(k); } catch (e) { got = "error: " + e.message; }
      if (got === want || Date.now() > deadline) break;
      await new Promise((resolve) => setTimeout(resolve, 20));  // the replica's link catches up
    }
    if (got === want) out.ok++;
    else out.missing.push({ key: k, want, got });
  }
  return out;
}

// --------------------------------------------------------- client adapters
// Each adapter: connect(), call(argv) (routed by the client), set/get,
// nodes() (ports it lists), multi(tag keys), batch(), moved(slots), close().
function ioredisAdapter() {
  const Redis = require("ioredis");
  let cluster = null;
  return {
    async connect() {
      cluster = new Redis.Cluster(args.seeds.map((port) => ({ host: HOST, port })), {
        slotsRefreshTimeout: 5000,
        redisOptions: { connectTimeout: 5000, maxRetriesPerRequest: 2 },
      });
      cluster.on("error", (e) => noteError("ioredis cluster event", e));
      cluster.on("node error", (e, key) => noteError("ioredis node " + key, e));
      await new Promise((resolve, reject) => {
        cluster.once("ready", resolve);
        cluster.once("end", () => reject(new Error("ioredis cluster ended before ready")));
      });
    },
    call: (argv) => cluster.call(...argv),
    set: (k, v) => cluster.set(k, v),
    get: (k) => cluster.get(k),
    nodes: () => cluster.nodes("all").map((n) => Number(n.options.port)),
    async multi(keys) {
      const res = await cluster.multi().set(keys[0], "a").incr(keys[1]).set(keys[2], "c").get(keys[0]).exec();
      // exec() gives [[err, value], ...]
      return res.map(([err, v]) => (err ? "ERR " + err.message : v));
    },
    async batch() { return null; },  // an ioredis cluster pipeline must stay on one node
    async moved(slots, probeKey, slot, wrongPort, value) {
      const out = { slot, owner_port: ownerPort(slots, slot), wrong_port: wrongPort };
      // The raw answer of the wrong node (its own connection, no redirect
      // following): the MOVED text as the client receives it.
      const wrong = cluster.nodes("master").find((n) => Number(n.options.port) === wrongPort);
      try {
        out.probe = "reply " + JSON.stringify(await wrong.set(probeKey, value));
      } catch (e) {
        out.probe = String(e.message);
      }
      // The client's own MOVED handling: point its cache at the wrong node.
      cluster.slots[slot] = [HOST + ":" + wrongPort];
      try {
        out.set_through_cluster = await cluster.set(probeKey, value);
      } catch (e) {
        noteError("ioredis SET after a wrong slot-cache entry", e);
      }
      out.slot_cache_after = cluster.slots[slot];
      out.read_back = await cluster.get(probeKey);
      return out;
    },
    async replicaReads(pairs, deadline) {
      const reader = new Redis.Cluster(args.seeds.map((port) => ({ host: HOST, port })), {
        scaleReads: "slave",
        slotsRefreshTimeout: 5000,
        redisOptions: { connectTimeout: 5000, maxRetriesPerRequest: 2 },
      });
      reader.on("error", (e) => noteError("ioredis replica reader event", e));
      try {
        await new Promise((resolve, reject) => {
          reader.once("ready", resolve);
          reader.once("end", () => reject(new Error("ioredis replica reader ended before ready")));
        });
        return await pollReads(pairs, deadline, (k) => reader.get(k));
      } finally {
        await reader.quit().catch(() => reader.disconnect());
      }
    },
    async close() { if (cluster) await cluster.quit().catch(() => cluster.disconnect()); },
  };
}

function glideAdapter() {
  const glide = require("@valkey/valkey-glide");
  glide.Logger.init("error");
  let client = null;
  return {
    async connect() {
      client = await glide.GlideClusterClient.createClient({
        addresses: args.seeds.map((port) => ({ host: HOST, port })),
        requestTimeout: 5000,
        protocol: glide.ProtocolVersion.RESP3,
      });
    },
    call: (argv) => client.customCommand(argv),
    set: (k, v) => client.set(k, v),
    get: (k) => client.get(k),
    async nodes() {
      // A command without a reply policy answers per node, keyed "host:port".
      const res = await client.customCommand(["CLUSTER", "MYID"], { route: "allNodes" });
      return res.map((e) => Number(String(e.key).split(":").pop()));
    },
    async multi(keys) {
      const b = new glide.ClusterBatch(true).set(keys[0], "a").incr(keys[1]).set(keys[2], "c").get(keys[0]);
      const res = await client.exec(b, false);
      return res.map((v) => (v instanceof Error ? "ERR " + v.message : v));
    },
    async batch(keys) {
      // Non-atomic: glide splits it by slot over the nodes and reassembles.
      const b = new glide.ClusterBatch(false);
      for (const k of keys) b.set(k, "batch:" + k);
      for (const k of keys) b.get(k);
      const res = await client.exec(b, false);
      const errs = res.filter((v) => v instanceof Error).map((v) => v.message);
      errs.forEach((m) => noteError("glide non-atomic batch", m));
      const got = res.slice(keys.length);
      const bad = keys.filter((k, i) => got[i] !== "batch:" + k);
      return { keys: keys.length, ok: res.slice(0, keys.length).filter((v) => v === "OK").length,
               mismatched: bad.length, examples: bad.slice(0, 3) };
    },
    async moved(slots, probeKey, slot, wrongPort, value) {
      const out = { slot, owner_port: ownerPort(slots, slot), wrong_port: wrongPort };
      // Sent to a node that does not own the slot: glide's core follows the
      // MOVED itself (then the write lands) or hands the error back.
      try {
        out.probe = "reply " + JSON.stringify(await client.customCommand(["SET", probeKey, value],
          { route: { type: "routeByAddress", host: HOST, port: wrongPort } }));
      } catch (e) {
        out.probe = String(e.message);
      }
      out.set_through_cluster = await client.set(probeKey, value);
      out.read_back = await client.get(probeKey);
      return out;
    },
    async replicaReads(pairs, deadline) {
      const reader = await glide.GlideClusterClient.createClient({
        addresses: args.seeds.map((port) => ({ host: HOST, port })),
        requestTimeout: 5000,
        protocol: glide.ProtocolVersion.RESP3,
        readFrom: "preferReplica",
      });
      try {
        // Routed to the key's replica (not "prefer": a replica or nothing).
        return await pollReads(pairs, deadline, (k) =>
          reader.customCommand(["GET", k], { route: { type: "replicaSlotKey", key: k } }));
      } finally {
        reader.close();
      }
    },
    async close() { if (client) client.close(); },
  };
}

// ------------------------------------------------------------------ workload
// Each step's duration goes in report.step_ms as the next one starts; the
// sockets are sampled in between (outside both durations).
let stepStart = Date.now();
function step(name) {
  report.step_ms[report.step] = Date.now() - stepStart;
  sampleSockets();
  stepStart = Date.now();
  report.step = name;
}

async function run(c) {
  step("connect");
  await c.connect();

  step("topology");
  const slots = parseSlots(await c.call(["CLUSTER", "SLOTS"]));
  report.topology.slots = slots;
  report.topology.slots_ports = [...new Set(slots.flatMap((s) => s.ports))].sort((a, b) => a - b);
  report.topology.shards_ports = [...portsIn(await c.call(["CLUSTER", "SHARDS"]))].sort((a, b) => a - b);

  step("one key per slot range");
  for (const r of slots) {
    const key = keyInSlot("dp:range:" + args.tag + ":" + r.start, r.start);
    const value = "range-" + r.start + "-" + args.tag;
    const entry = { start: r.start, end: r.end, owner_port: r.ports[0], key, set: null, get: null };
    try {
      entry.set = await c.set(key, value);
      entry.get = await c.get(key);
    } catch (e) { noteError("range " + r.start + "-" + r.end, e); }
    entry.ok = entry.set === "OK" && entry.get === value;
    report.ranges.push(entry);
  }

  step("keys over all slots");
  const keys = Array.from({ length: args.keys }, (_, i) => "dp:" + args.tag + ":" + i);
  const value = (i) => "v:" + i + ":" + args.tag;
  const acked = await inWaves(keys.length, 200, async (i) => {
    report.keys.written++;
    try { return (await c.set(keys[i], value(i))) === "OK"; } catch (e) { noteError("SET " + keys[i], e); return false; }
  });
  report.keys.acknowledged = acked.filter(Boolean).length;
  const slotsCovered = new Set(keys.map((k) => slotOf(k)));
  report.keys.slots = slotsCovered.size;
  report.keys.nodes = [...new Set(keys.map((k) => ownerPort(slots, slotOf(k))))].sort((a, b) => a - b);
  await inWaves(keys.length, 200, async (i) => {
    let got;
    try { got = await c.get(keys[i]); } catch (e) { noteError("GET " + keys[i], e); return; }
    report.keys.read++;
    if (acked[i] && got !== value(i)) {
      report.keys.mismatched++;
      if (report.keys.examples.length < 5) report.keys.examples.push({ key: keys[i], want: value(i), got });
    }
  });

  step("transaction");
  const tag = "{dp-tx-" + args.tag + "}";
  const txKeys = [tag + ":a", tag + ":counter", tag + ":c"];
  const txResult = await c.multi(txKeys);
  const txRead = [];
  for (const k of txKeys) txRead.push(await c.get(k));
  report.transaction = { slot: slotOf(txKeys[0]), owner_port: ownerPort(slots, slotOf(txKeys[0])),
                         result: txResult, read_back: txRead };

  step("batch");
  report.batch = await c.batch(Array.from({ length: 200 }, (_, i) => "dp:batch:" + args.tag + ":" + i));

  step("moved");
  const primaries = [...new Set(slots.map((s) => s.ports[0]))];
  if (primaries.length > 1) {
    const slot = slots[slots.length - 1].start;
    const owner = ownerPort(slots, slot);
    const wrong = primaries.find((p) => p !== owner);
    report.moved = await c.moved(slots, keyInSlot("dp:moved:" + args.tag, slot), slot, wrong, "moved-" + args.tag);
  }

  step("replica reads");
  report.replica_reads = await c.replicaReads(report.ranges.map((e) => [e.key, e.get]),
                                              Date.now() + Math.min(20000, args.timeoutMs / 3));

  step("nodes");
  report.client_nodes = [...new Set(await c.nodes())].sort((a, b) => a - b);
  step("done");
}

function finish(code) {
  report.socket_ports = [...socketPorts].sort((a, b) => a - b);
  process.stdout.write("\n" + JSON.stringify(report) + "\n", () => process.exit(code));
}

(async () => {
  const deadline = setTimeout(() => {
    report.fatal = "deadline of " + args.timeoutMs + " ms passed during step " + JSON.stringify(report.step);
    finish(2);
  }, args.timeoutMs);
  const pkg = args.client === "ioredis" ? "ioredis" : "@valkey/valkey-glide";
  let c = null;
  let code = 0;
  try {
    report.version = packageVersion(pkg);
    c = args.client === "ioredis" ? ioredisAdapter() : glideAdapter();
    await run(c);
  } catch (e) {
    report.fatal = "step " + JSON.stringify(report.step) + ": " + String((e && e.stack) || e);
    code = 2;
    sampleSockets();
  }
  if (c) {
    try { await c.close(); } catch (e) { noteError("close", e); }
  }
  clearTimeout(deadline);
  finish(code);
})();
