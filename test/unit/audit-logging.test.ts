import assert from 'node:assert/strict';
import fc from 'fast-check';
import { journalUploadUrl, rsyslogForwarding, syslogNgForwarding } from '../../agent/audit/parsers/logging.js';

// Where logs leave the machine: rsyslog (legacy and RainerScript), syslog-ng, journal-upload.

// Debian 12's /etc/rsyslog.conf, abridged: only local files, no forwarding.
const DEBIAN_RSYSLOG = `# /etc/rsyslog.conf configuration file for rsyslog
#
# For more information install rsyslog-doc and see
# /usr/share/doc/rsyslog-doc/html/configuration/index.html

#################
#### MODULES ####
#################

module(load="imuxsock") # provides support for local system logging
module(load="imklog")   # provides kernel logging support
#module(load="immark")  # provides --MARK-- message capability

# provides UDP syslog reception
#module(load="imudp")
#input(type="imudp" port="514")

###########################
#### GLOBAL DIRECTIVES ####
###########################

$FileOwner root
$FileGroup adm
$FileCreateMode 0640
$DirCreateMode 0755
$Umask 0022
$WorkDirectory /var/spool/rsyslog
$IncludeConfig /etc/rsyslog.d/*.conf

###############
#### RULES ####
###############

*.*;auth,authpriv.none		-/var/log/syslog
auth,authpriv.*			/var/log/auth.log
cron.*				-/var/log/cron.log
kern.*				-/var/log/kern.log
mail.*				-/var/log/mail.log
user.*				-/var/log/user.log
*.emerg				:omusrmsg:*
# *.* @@remote-host:514
`;

describe('audit: rsyslog forwarding', () => {
  it('finds nothing in Debian\'s stock rsyslog.conf (a commented-out forward included)', () => {
    assert.deepEqual(rsyslogForwarding(DEBIAN_RSYSLOG), []);
  });

  it('finds legacy UDP and TCP forwards with their host, port and line', () => {
    const text = '# forward\n*.* @logs.example.net\nauth,authpriv.* @@10.0.0.5:1514\n*.* @@(o,z9)relay.example.org:6514;RSYSLOG_ForwardFormat\nkern.* @[2001:db8::5]:514\n';
    const f = rsyslogForwarding(text);
    assert.deepEqual(f.map((x) => [x.line, x.target, x.port, x.protocol]), [
      [2, 'logs.example.net', null, 'udp'],
      [3, '10.0.0.5', 1514, 'tcp'],
      [4, 'relay.example.org', 6514, 'tcp'],
      [5, '2001:db8::5', 514, 'udp'],
    ]);
    assert.equal(f[1]?.text, 'auth,authpriv.* @@10.0.0.5:1514');
  });

  it('finds forwards after property filters, "&" and "if ... then"', () => {
    const text = ':programname, isequal, "sshd" @@audit.example.net:514\n& @backup.example.net\nif $syslogfacility-text == "auth" then @@auth.example.net\n';
    assert.deepEqual(rsyslogForwarding(text).map((x) => x.target), ['audit.example.net', 'backup.example.net', 'auth.example.net']);
  });

  it('finds RainerScript omfwd and omrelp actions spanning lines, not other actions', () => {
    const text = [
      'module(load="omrelp")',
      'action(type="omfile" file="/var/log/local.log")',
      '*.* action(type="omfwd"',
      '       target="collector.example.net" port="10514"',
      '       protocol="tcp" template="RSYSLOG_SyslogProtocol23Format")',
      'ruleset(name="r") {',
      '  action(type="omrelp" target="relp.example.net" port="2514")',
      '}',
      '/* action(type="omfwd" target="commented.example.net") */',
      '# action(type="omfwd" target="commented2.example.net")',
      'action(type="omfwd" target="udp.example.net")',
    ].join('\n');
    const f = rsyslogForwarding(text);
    assert.deepEqual(f.map((x) => [x.line, x.target, x.port, x.protocol]), [
      [3, 'collector.example.net', 10514, 'tcp'],
      [7, 'relp.example.net', 2514, 'relp'],
      [11, 'udp.example.net', null, 'udp'],
    ]);
  });

  it('finds the legacy :omrelp: action', () => {
    assert.deepEqual(rsyslogForwarding('*.* :omrelp:192.0.2.10:2514;RSYSLOG_ForwardFormat\n').map((x) => [x.target, x.port, x.protocol]), [['192.0.2.10', 2514, 'relp']]);
  });

  it('does not take an @ inside a word, a quoted string or a $ directive for a forward', () => {
    const text = '$ActionMailTo root@localhost\ntemplate(name="t" type="string" string="%msg% @@not.a.host\\n")\n*.* /var/log/user@host.log\n';
    assert.deepEqual(rsyslogForwarding(text), []);
  });

  it('never flags selector lines with local actions (fast-check), and always finds a generated forward', () => {
    const facility = fc.constantFrom('*', 'auth', 'authpriv', 'cron', 'kern', 'mail', 'user', 'daemon', 'local0', 'local7');
    const priority = fc.constantFrom('*', 'info', 'notice', 'warn', 'err', 'crit', 'none', 'debug');
    const selector = fc.array(fc.tuple(facility, priority).map(([f, p]) => `${f}.${p}`), { minLength: 1, maxLength: 3 }).map((s) => s.join(';'));
    const local = fc.constantFrom('/var/log/syslog', '-/var/log/mail.log', ':omusrmsg:*', ':omusrmsg:root,admin', '~', 'stop', '|/dev/xconsole', '/var/log/x.log;RSYSLOG_TraditionalFileFormat');
    fc.assert(fc.property(fc.array(fc.tuple(selector, fc.constantFrom(' ', '\t', '\t\t'), local).map(([s, sp, a]) => `${s}${sp}${a}`), { maxLength: 10 }), (lines) => {
      assert.deepEqual(rsyslogForwarding(lines.join('\n')), []);
    }));
    const host = fc.oneof(fc.domain(), fc.ipV4());
    fc.assert(fc.property(selector, fc.constantFrom('@', '@@'), host, fc.option(fc.integer({ min: 1, max: 65535 }), { nil: undefined }), (sel, at, h, port) => {
      const f = rsyslogForwarding(`${sel} ${at}${h}${port === undefined ? '' : `:${port}`}\n`);
      assert.equal(f.length, 1);
      assert.equal(f[0]?.target, h);
      assert.equal(f[0]?.port, port ?? null);
      assert.equal(f[0]?.protocol, at === '@@' ? 'tcp' : 'udp');
    }));
  });
});

describe('audit: syslog-ng and journal upload', () => {
  it('finds network destinations of syslog-ng, not file ones', () => {
    const text = [
      'source s_src { system(); internal(); };',
      'destination d_file { file("/var/log/messages"); };',
      'destination d_net {',
      '  network("logs.example.net" port(6514) transport("tls"));',
      '};',
      'destination d_udp { udp("192.0.2.1" port(514)); };',
      '# destination d_old { tcp("old.example.net"); };',
      'log { source(s_src); destination(d_net); };',
    ].join('\n');
    assert.deepEqual(syslogNgForwarding(text).map((x) => [x.line, x.target, x.port, x.protocol]), [
      [4, 'logs.example.net', 6514, 'tcp'],
      [6, '192.0.2.1', 514, 'udp'],
    ]);
  });

  it('reads journal-upload.conf\'s URL=, and nothing from the commented default', () => {
    assert.equal(journalUploadUrl('[Upload]\n# URL=\n# ServerKeyFile=/etc/ssl/private/journal-upload.pem\n'), null);
    const f = journalUploadUrl('[Upload]\nURL=https://collector.example.net:19532\n');
    assert.deepEqual([f?.line, f?.target, f?.port, f?.protocol], [2, 'collector.example.net', 19532, 'http']);
    assert.equal(journalUploadUrl('[Other]\nURL=https://x.example\n'), null);
  });
});
