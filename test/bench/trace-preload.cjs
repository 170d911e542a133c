// Preloaded by test/bench/boot-timeline.mjs (`node -r THIS dist/imprint.cjs ...`): records,
// in ms since the process's time origin, when node's bootstrap handed over, when the bundle
// was compiled and run, every child process (start, exit, argv[0..2]) and the exit event; and
// as `marks` (name, t) when dist/imprint-vendor.cjs was compiled and each net.connect call
// (the metadata client's connections), and as `lastOutput` when imprint last wrote to stdout.
// Writes one JSON object to $IMPRINT_TRACE_OUT at exit. Observes only; changes nothing.
'use strict';
const cp = require('node:child_process');
const fs = require('node:fs');
const Module = require('node:module');
const net = require('node:net');

const trace = { bootstrap: performance.now(), bundleStart: null, bundleEnd: null, children: [], marks: [], lastOutput: null, exit: null };

const write = process.stdout.write;
process.stdout.write = function () {
  trace.lastOutput = performance.now();
  return write.apply(this, arguments);
};

const compile = Module.prototype._compile;
Module.prototype._compile = function (content, filename) {
  if (filename.endsWith('imprint-vendor.cjs')) {
    trace.marks.push({ name: 'vendor bundle: compile start', t: performance.now() });
    try {
      return compile.apply(this, arguments);
    } finally {
      trace.marks.push({ name: 'vendor bundle: compiled', t: performance.now() });
    }
  }
  if (!filename.endsWith('imprint.cjs')) return compile.apply(this, arguments);
  trace.bundleStart = performance.now();
  try {
    return compile.apply(this, arguments);
  } finally {
    trace.bundleEnd = performance.now();
  }
};

const spawn = cp.spawn;
cp.spawn = function (file, args) {
  const start = performance.now();
  const child = spawn.apply(this, arguments);
  const record = { start, spawned: performance.now(), end: null, argv: [file, ...(Array.isArray(args) ? args : [])] };
  trace.children.push(record);
  child.on('close', () => { record.end = performance.now(); });
  return child;
};

const connect = net.connect;
let connections = 0;
net.connect = function () {
  trace.marks.push({ name: `net.connect #${++connections}`, t: performance.now() });
  return connect.apply(this, arguments);
};

process.on('exit', () => {
  trace.exit = performance.now();
  if (process.env.IMPRINT_TRACE_OUT) fs.writeFileSync(process.env.IMPRINT_TRACE_OUT, JSON.stringify(trace));
});
