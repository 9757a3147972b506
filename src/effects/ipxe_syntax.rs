//! A line-by-line checker of iPXE scripts, for the commands ironledger writes.
//!
//! iPXE only reports a bad script when a machine boots it; this checker catches
//! the mistakes before: unknown commands, missing arguments, `goto` to a label
//! that does not exist, and malformed iSCSI URIs
//! (`iscsi:<server>:<protocol>:<port>:<lun hex>:<target iqn>`). The engine
//! checks every script before writing it, and the tests check every rendering.

/// Where a script is wrong and why. It never quotes the line: a script holds
/// CHAP secrets, and this error ends up in `last_error`, the log and the API.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {problem}")]
pub struct SyntaxError {
    pub line: usize,
    pub problem: String,
}

/// Checks one `iscsi:` URI.
pub fn check_iscsi_uri(uri: &str) -> Result<(), String> {
    let rest = uri.strip_prefix("iscsi:").ok_or("not an iscsi: URI")?;
    // The server may be a bracketed IPv6 address containing colons.
    let (server, rest) = if let Some(r) = rest.strip_prefix('[') {
        let (v6, tail) = r.split_once(']').ok_or("unterminated [IPv6] server")?;
        (
            v6,
            tail.strip_prefix(':')
                .ok_or("missing ':' after the server")?,
        )
    } else {
        rest.split_once(':').ok_or("missing fields")?
    };
    let fields: Vec<&str> = rest.splitn(4, ':').collect();
    let [protocol, port, lun, target] = fields[..] else {
        return Err("expected server:protocol:port:lun:target".into());
    };
    if server.is_empty() {
        return Err("empty server".into());
    }
    if !(protocol.is_empty() || protocol == "6") {
        return Err(format!("unknown protocol '{protocol}'"));
    }
    if !port.chars().all(|c| c.is_ascii_digit()) {
        return Err(format!("port '{port}' is not a number"));
    }
    if lun.is_empty() || !lun.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
        return Err(format!("LUN '{lun}' is not hexadecimal"));
    }
    if target.is_empty() || target.contains(char::is_whitespace) {
        return Err("empty or malformed target name".into());
    }
    Ok(())
}

fn setting_name_ok(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:${}".contains(c))
}

/// Checks one command (no `||`/`&&`).
fn check_command(words: &[&str], labels: &[String]) -> Result<(), String> {
    let (cmd, args) = words.split_first().ok_or("empty command")?;
    let need = |n: usize| {
        if args.len() >= n {
            Ok(())
        } else {
            Err(format!("{cmd} needs {n} argument(s)"))
        }
    };
    match *cmd {
        "imgfree" | "reboot" | "poweroff" => Ok(()),
        "set" => {
            need(2)?;
            if setting_name_ok(args[0]) {
                Ok(())
            } else {
                Err(format!("bad setting name '{}'", args[0]))
            }
        }
        "clear" | "inc" | "isset" | "iseq" => {
            need(1)?;
            if setting_name_ok(args[0]) {
                Ok(())
            } else {
                Err(format!("bad setting name '{}'", args[0]))
            }
        }
        "goto" => {
            need(1)?;
            if labels.iter().any(|l| l == args[0]) {
                Ok(())
            } else {
                Err(format!("no label '{}'", args[0]))
            }
        }
        "echo" | "exit" => Ok(()),
        "sleep" => {
            need(1)?;
            args[0]
                .parse::<u32>()
                .map(|_| ())
                .map_err(|_| format!("sleep needs seconds, got '{}'", args[0]))
        }
        "chain" => need(1),
        "prompt" => Ok(()),
        "sanhook" | "sanboot" => {
            let mut uris = 0;
            let mut i = 0;
            while i < args.len() {
                match args[i] {
                    "--no-describe" | "--keep" => {}
                    "--drive" | "--filename" | "--extra" | "--label" | "--uuid" => {
                        let v = args
                            .get(i + 1)
                            .ok_or_else(|| format!("{} needs a value", args[i]))?;
                        if args[i] == "--drive"
                            && !(v.starts_with("0x") && u8::from_str_radix(&v[2..], 16).is_ok())
                        {
                            return Err(format!("drive '{v}' is not 0xNN"));
                        }
                        i += 1;
                    }
                    flag if flag.starts_with("--") => return Err(format!("unknown option {flag}")),
                    uri => {
                        if uri.starts_with("iscsi:") {
                            check_iscsi_uri(uri).map_err(|e| format!("{uri}: {e}"))?;
                        }
                        uris += 1;
                    }
                }
                i += 1;
            }
            if *cmd == "sanhook" && uris == 0 {
                Err("sanhook needs a URI".into())
            } else {
                Ok(())
            }
        }
        other => Err(format!("unknown command '{other}'")),
    }
}

/// Checks a whole script.
pub fn check(script: &str) -> Result<(), SyntaxError> {
    let lines: Vec<&str> = script.lines().collect();
    if lines.first().map(|l| l.trim()) != Some("#!ipxe") {
        return Err(SyntaxError {
            line: 1,
            problem: "missing #!ipxe".into(),
        });
    }
    let labels: Vec<String> = lines
        .iter()
        .filter_map(|l| l.trim().strip_prefix(':'))
        .map(|l| l.trim().to_string())
        .collect();
    for (n, raw) in lines.iter().enumerate().skip(1) {
        let line = raw.trim();
        let err = |problem: String| SyntaxError {
            line: n + 1,
            problem,
        };
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(label) = line.strip_prefix(':') {
            if label.is_empty()
                || !label
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            {
                return Err(err("bad label".into()));
            }
            continue;
        }
        // As iPXE does: words first; a word starting with `#` starts a
        // comment; `||`, `&&` and `;` end a command only as words of their
        // own (a password may contain `||`).
        let words: Vec<&str> = line
            .split_whitespace()
            .take_while(|w| !w.starts_with('#'))
            .collect();
        for command in words.split(|w| matches!(*w, "||" | "&&" | ";")) {
            check_command(command, &labels).map_err(err)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris() {
        assert!(
            check_iscsi_uri("iscsi:10.0.2.100::3260:0:iqn.2010-10.org.openstack:volume-1").is_ok()
        );
        assert!(check_iscsi_uri("iscsi:[fe80::1]::3260:a:iqn.x").is_ok());
        assert!(check_iscsi_uri("iscsi:host:::1f:iqn.x").is_ok());
        assert!(check_iscsi_uri("iscsi:host::3260:10.0:iqn.x").is_err());
        assert!(check_iscsi_uri("iscsi:host::port:0:iqn.x").is_err());
        assert!(check_iscsi_uri("iscsi:host::3260:0:").is_err());
        assert!(check_iscsi_uri("http://x").is_err());
    }

    #[test]
    fn scripts() {
        assert!(check(
            "#!ipxe\nsanboot --no-describe iscsi:h::3260:0:iqn.x || goto fail\n:fail\necho no\n"
        )
        .is_ok());
        assert_eq!(check("#!ipxe\ngoto nowhere\n").unwrap_err().line, 2);
        assert!(check("#!ipxe\nsanhook --drive 80 iscsi:h::1:0:i\n").is_err());
        assert!(check("#!ipxe\nsethost x\n").is_err());
        assert!(check("set x y\n").is_err());
        assert!(check("#!ipxe\nset username\n").is_err());
        // `||` inside a word is part of the word, as in iPXE.
        assert!(check("#!ipxe\nset password S3cr3t||pw\n").is_ok());
        assert!(check("#!ipxe\nset password x || bogus\n").is_err());
        assert!(check("#!ipxe\nset password x ; bogus\n").is_err());
        // A `#` word starts a comment: what follows is not checked, and a
        // `set` left without its value is caught.
        assert!(check("#!ipxe\nset password #secret\n").is_err());
        assert!(check("#!ipxe\nimgfree # bogus words\n").is_ok());
    }

    #[test]
    fn errors_never_quote_the_line() {
        let e = check("#!ipxe\nset password hunter2 && sethost\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(!e.to_string().contains("hunter2"), "{e}");
    }
}
