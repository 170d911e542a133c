// `imprint COMMAND --help`: one page per command, each under 80 columns. (seal, audit and
// emulate parse their own flags and carry their own pages.)

export const SHORT_USAGE = `Usage: imprint COMMAND [OPTIONS]
Commands: boot, status, config, clean, verify-product, seal, audit, emulate,
          known-hosts, demo, version, help
"imprint help" lists them all; "imprint COMMAND --help" explains one.
`;

export const COMMAND_HELP: Record<string, string> = {
  boot: `Usage: imprint boot [--root DIR] [--config FILE] [--dry-run] [--json]
                    [--verbose] [--instance-id ID] [--metadata-url URL]
                    [--metadata-deadline DURATION]

Make this instance (or the tree under --root) safe and reachable, once per
instance: new SSH host keys, random locked passwords, keys-only sshd, the
default user, then the launch keys from the metadata service. Run at every
boot by imprint.service; work already done for this instance is not repeated.

Every boot (not --dry-run) saves its report to /run/imprint/report.json and
/var/lib/imprint/last-boot.json (schema: /usr/share/imprint/schema/).

Options:
  --root DIR          Work on the tree under DIR instead of this system.
  --config FILE       This config file alone (default:
                      /etc/imprint/imprint.yaml, then the drop-ins
                      /etc/imprint/imprint.yaml.d/*.yaml in name order).
  --dry-run           Print what would be done; change nothing.
  --json              One JSON report on stdout; human lines on stderr.
  --verbose           Also print the details of each step.
  --instance-id ID    Treat the instance as ID.
  --metadata-url URL  The metadata service (default http://169.254.169.254).
  --metadata-deadline DURATION
                      How long to wait for metadata (default 120s).

Exit status: 0 done, 1 a task failed (retried at the next boot),
2 usage or config error (nothing changed).
`,
  'verify-product': `Usage: imprint verify-product [--root DIR] [--config FILE] [--metadata-url URL]
                              [--json]

Check the product codes the config expects (product_codes.expected) against the
metadata service, or the signed identity document, as boot does.

Exit status: 0 all codes confirmed, 1 not confirmed, 2 usage or config error.
`,
  demo: `Usage: imprint demo [--json] [--keep]

Copy a small built-in image (known passwords, baked host keys, an sshd that
allows passwords) to a temporary directory, run "imprint boot --root" on it,
and show what changed. Needs root (boot changes owners and modes).

Options:
  --json   The boot report and the changes as JSON.
  --keep   Keep the demo tree and print where it is.
`,
  status: `Usage: imprint status [--root DIR] [--wait] [--long] [--json]

What imprint did on this boot, from /run/imprint/report.json (and, on a live
system, systemd): done, done-with-warnings, failed, interrupted (the boot was
killed), running, stood-aside (cloud-init provisions), disabled, not-run.

Options:
  --root DIR   Read the reports of the tree under DIR.
  --wait       Block until the boot has finished (it waits through not-run and
               running), then print the outcome: for Packer and for scripts
               that must not log in before the launch key is in place.
  --long       Every task with its outcome, time, actions and errors.
  --json       The status and this boot's report as JSON
               (/usr/share/imprint/schema/status.schema.json).

Exit status:
  0  done
  1  failed or interrupted (the next boot retries what failed)
  2  done with warnings (also: usage error)
  3  imprint did not provision on this boot: not run, disabled, stood aside
  4  still running (without --wait)
`,
  config: `Usage: imprint config check [--root DIR] [--config FILE] [--json]
       imprint config show  [--root DIR] [--config FILE] [--json]

check  Validate the config: /etc/imprint/imprint.yaml, then the drop-ins
       /etc/imprint/imprint.yaml.d/*.yaml in name order (later files win; a
       whole default_user section is one value). Every problem is shown with
       its file:line:col, the line, and a caret under the column.
show   Print the effective config, defaults included, and for each value the
       file and line it came from.

Durations take a unit: "120s", "500ms", "2m"; a bare number is seconds.
Booleans are true and false (YAML 1.2: yes and no are strings).
A JSON Schema for editors: /usr/share/imprint/schema/config.schema.json.

Exit status: 0 valid, 2 any problem (as boot does for a bad config).
`,
  clean: `Usage: imprint clean [--root DIR] [--dry-run] [--json]

Forget this instance: remove /var/lib/imprint/state.json and the saved reports,
so the next boot provisions it again (new host keys, passwords, launch keys).
For image builders who boot an image to test it; "imprint seal" before sharing
the image removes much more. Refused while a boot runs.

Options:
  --root DIR   Work on the tree under DIR.
  --dry-run    List what would be removed; remove nothing.
  --json       What was (or would be) removed, as JSON.

Exit status: 0 done, 1 a boot is running, 2 usage error.
`,
};
