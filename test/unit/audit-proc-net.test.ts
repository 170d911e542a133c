import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { createServer, type Server } from 'node:net';
import fc from 'fast-check';
import { liveListeningSockets } from '../../agent/audit/checks/services.js';
import { decodeAddress, formatIpv6, isLoopback, listeningSockets, parseProcNet, TCP_LISTEN } from '../../agent/audit/parsers/proc-net.js';

// /proc/net/{tcp,tcp6,udp,udp6} parsing, from fixture text as an x86 (little-endian) kernel
// writes it, plus one read-only look at this machine's own /proc for sockets this test opens.

const TCP = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 18342 1 0000000000000000 100 0 0 10 0
   1: 0100007F:0CEA 00000000:0000 0A 00000000:00000000 00:00000000 00000000   110        0 19001 1 0000000000000000 100 0 0 10 0
   2: 0F02000A:0016 0202000A:D431 01 00000000:00000000 02:0008D3F2 00000000     0        0 20555 4 0000000000000000 20 4 30 10 -1
   3: 0F02000A:A2B8 2B1710AC:01BB 06 00000000:00000000 03:000016D1 00000000     0        0 0 3 0000000000000000
`;

const TCP6 = `  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:0016 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 18344 1 0000000000000000 100 0 0 10 0
   1: 00000000000000000000000001000000:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 19990 1 0000000000000000 100 0 0 10 0
   2: 0000000000000000FFFF00000F02000A:0050 0000000000000000FFFF00000202000A:C350 01 00000000:00000000 00:00000000 00000000    33        0 21000 1 0000000000000000 20 4 29 10 -1
   3: B80D0120000000000000000001000000:01BB 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 21111 1 0000000000000000 100 0 0 10 0
`;

const UDP = `   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
  112: 0F02000A:0044 00000000:0000 07 00000000:00000000 00:00000000 00000000   101        0 17777 2 0000000000000000 0
  200: 3500007F:0035 00000000:0000 07 00000000:00000000 00:00000000 00000000   102        0 17800 2 0000000000000000 0
  301: 0F02000A:E1A2 08080808:0035 01 00000000:00000000 00:00000000 00000000     0        0 17900 2 0000000000000000 0
`;

const UDP6 = `  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
   42: 00000000000000000000000000000000:0223 00000000000000000000000000000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 17850 2 0000000000000000 0
`;

describe('audit: /proc/net parsing', () => {
  it('reads IPv4 TCP sockets: addresses, ports, states, uid, inode and line', () => {
    const s = parseProcNet(TCP, 'tcp', true);
    assert.equal(s.length, 4);
    assert.deepEqual(s[0], { proto: 'tcp', family: 4, address: '0.0.0.0', port: 22, remoteAddress: '0.0.0.0', remotePort: 0, state: TCP_LISTEN, uid: 0, inode: 18342, line: 2 });
    assert.equal(s[1]?.address, '127.0.0.1');
    assert.equal(s[1]?.port, 3306);
    assert.equal(s[1]?.uid, 110);
    assert.equal(s[2]?.address, '10.0.2.15');
    assert.equal(s[2]?.remoteAddress, '10.0.2.2');
    assert.equal(s[2]?.remotePort, 54321);
    assert.equal(s[3]?.remoteAddress, '172.16.23.43');
    assert.deepEqual(listeningSockets(s).map((x) => x.port), [22, 3306]);
  });

  it('reads IPv6 TCP sockets, with RFC 5952 text and IPv4-mapped addresses', () => {
    const s = parseProcNet(TCP6, 'tcp6', true);
    assert.deepEqual(s.map((x) => x.address), ['::', '::1', '::ffff:10.0.2.15', '2001:db8::1']);
    assert.deepEqual(s.map((x) => x.port), [22, 8080, 80, 443]);
    assert.equal(s[1]?.uid, 1000);
    assert.deepEqual(listeningSockets(s).map((x) => `${x.address}:${x.port}`), [':::22', '::1:8080', '2001:db8::1:443']);
  });

  it('counts bound UDP sockets without a peer as listening, IPv4 and IPv6, and not connected ones', () => {
    const v4 = parseProcNet(UDP, 'udp', true);
    assert.deepEqual(listeningSockets(v4).map((x) => `${x.address}:${x.port}`), ['10.0.2.15:68', '127.0.0.53:53']);
    const v6 = parseProcNet(UDP6, 'udp6', true);
    assert.deepEqual(listeningSockets(v6).map((x) => `${x.proto}/${x.family} ${x.address}:${x.port}`), ['udp/6 :::547']);
    assert.equal(v4[0]?.line, 2);
  });

  it('decodes words in big-endian order on a big-endian kernel', () => {
    assert.equal(decodeAddress('7F000001', false), '127.0.0.1');
    assert.equal(decodeAddress('00000000000000000000000000000001', false), '::1');
    assert.equal(decodeAddress('20010DB8000000000000000000000001', false), '2001:db8::1');
  });

  it('skips headers and malformed lines and never throws on any text', () => {
    assert.deepEqual(parseProcNet('garbage\n  0: zz:0016 00000000:0000 0A\n', 'tcp', true), []);
    fc.assert(fc.property(fc.string({ maxLength: 400 }), fc.constantFrom('tcp', 'tcp6', 'udp', 'udp6' as const), (text, table) => {
      parseProcNet(text, table);
    }));
  });

  it('round-trips generated tables: what the kernel format says is what comes back', () => {
    const word = fc.integer({ min: 0, max: 0xffffffff });
    const hexLE = (n: number): string => Buffer.from([n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, n >>> 24]).toString('hex').toUpperCase();
    const sock = fc.record({ words: fc.array(word, { minLength: 4, maxLength: 4 }), port: fc.integer({ min: 0, max: 65535 }), state: fc.integer({ min: 1, max: 12 }), uid: fc.integer({ min: 0, max: 65535 }), inode: fc.integer({ min: 0, max: 2 ** 31 }) });
    fc.assert(fc.property(fc.array(sock, { maxLength: 8 }), fc.boolean(), (socks, six) => {
      const lines = socks.map((s, i) => {
        const addr = (six ? s.words : s.words.slice(0, 1)).map(hexLE).join('');
        const zero = six ? '0'.repeat(32) : '00000000';
        return `  ${i}: ${addr}:${s.port.toString(16).toUpperCase().padStart(4, '0')} ${zero}:0000 ${s.state.toString(16).toUpperCase().padStart(2, '0')} 00000000:00000000 00:00000000 00000000 ${String(s.uid).padStart(5)}        0 ${s.inode} 1 0000000000000000`;
      });
      const parsed = parseProcNet(`header\n${lines.join('\n')}\n`, six ? 'tcp6' : 'tcp', true);
      assert.equal(parsed.length, socks.length);
      parsed.forEach((p, i) => {
        const s = socks[i] as (typeof socks)[number];
        assert.equal(p.port, s.port);
        assert.equal(p.uid, s.uid);
        assert.equal(p.inode, s.inode);
        assert.equal(p.state, s.state);
        assert.equal(p.line, i + 2);
        const bytes = (six ? s.words : s.words.slice(0, 1)).flatMap((w) => [w >>> 24, (w >>> 16) & 0xff, (w >>> 8) & 0xff, w & 0xff]);
        const expected = six ? formatIpv6(bytes) : bytes.join('.');
        assert.equal(p.address, expected);
      });
    }));
  });

  it('formats IPv6 as RFC 5952 does (the WHATWG URL serializer agrees, mapped addresses aside)', () => {
    fc.assert(fc.property(fc.array(fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 0xffff })), { minLength: 8, maxLength: 8 }), (groups) => {
      const bytes = groups.flatMap((g) => [g >>> 8, g & 0xff]);
      const mapped = groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff;
      fc.pre(!mapped);
      const full = groups.map((g) => g.toString(16)).join(':');
      assert.equal(`[${formatIpv6(bytes)}]`, new URL(`http://[${full}]/`).hostname);
    }));
  });

  it('tells loopback addresses apart', () => {
    for (const a of ['127.0.0.1', '127.0.0.53', '::1', '::ffff:127.0.0.1']) assert.ok(isLoopback(a), a);
    for (const a of ['0.0.0.0', '::', '10.0.0.1', '::ffff:10.0.0.1', '2001:db8::1']) assert.ok(!isLoopback(a), a);
  });
});

describe('audit: this machine\'s /proc, read only', () => {
  const servers: Server[] = [];
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
  });

  const listen = (host: string): Promise<number> => new Promise((resolve, reject) => {
    const server = createServer();
    servers.push(server);
    server.once('error', reject);
    server.listen(0, host, () => resolve((server.address() as { port: number }).port));
  });

  it('finds the TCP (IPv4, IPv6) and UDP sockets this process listens on, with its pid and program', async () => {
    const v4 = await listen('127.0.0.1');
    const v6 = await listen('::1').catch(() => null); // a kernel without IPv6 has no tcp6 table
    const udp = createSocket('udp4');
    await new Promise<void>((r) => udp.bind(0, '127.0.0.1', () => r()));
    try {
      const udpPort = udp.address().port;
      const sockets = await liveListeningSockets();
      const mine = (proto: string, port: number, family: number) =>
        sockets.find((s) => s.proto === proto && s.port === port && s.family === family && s.owners.some((o) => o.pid === process.pid));
      const t4 = mine('tcp', v4, 4);
      assert.ok(t4, `tcp 127.0.0.1:${v4} not found`);
      assert.equal(t4.address, '127.0.0.1');
      assert.equal(t4.owners.find((o) => o.pid === process.pid)?.exe, process.execPath);
      if (v6 !== null) assert.equal(mine('tcp', v6, 6)?.address, '::1');
      assert.ok(mine('udp', udpPort, 4), `udp 127.0.0.1:${udpPort} not found`);
    } finally {
      udp.close();
    }
  });
});
