//! What serving a Redis Cluster adds to the bridge: the slot of a key (CRC16 and hash tags, as
//! Redis Cluster computes it), the keys a command names, and the commands that cannot mean over
//! many masters what they mean over one.
//!
//! Single commands and pipelined ones are routed by the cluster client (redis-rs), which also
//! splits `MGET`, `DEL`, `EXISTS`, `MSET`, … by slot and sends `KEYS`, `DBSIZE`, `FLUSHALL`,
//! `FLUSHDB`, `RANDOMKEY`, `PING` and `INFO` to every master, combining the answers. What is
//! decided here is the rest: `SCAN`, whose cursor belongs to one node, is refused; a transaction
//! must keep every key in one slot, since it runs on one node.
//!
//! One difference from one Redis remains: the cluster client turns an error reply nested in a
//! reply (a script returning a table that holds `redis.error_reply`) into an error for the whole
//! command, so that command answers 400 with the nested error instead of 200 with it inside.
//! Transactions, whose EXEC reply holds one result per command, go over the bridge's own
//! connection to the slot's master instead, and keep every result.

use crate::command::Command;

/// Redis Cluster's slot count.
const SLOTS: u16 = 16_384;

/// Redis Cluster's own wording for keys in more than one slot, answered for a `/multi-exec`
/// that spans slots before anything is sent.
pub(crate) const CROSSSLOT: &str = "CROSSSLOT Keys in request don't hash to the same slot";

/// The slot Redis Cluster keeps `key` in: CRC16 (XMODEM) of the key, or of its hash tag — the
/// bytes between the first `{` and the next `}`, when there are any — modulo 16 384.
pub(crate) fn slot(key: &[u8]) -> u16 {
    crc16::State::<crc16::XMODEM>::calculate(hash_tag(key).unwrap_or(key)) % SLOTS
}

fn hash_tag(key: &[u8]) -> Option<&[u8]> {
    let open = key.iter().position(|&b| b == b'{')?;
    let inside = &key[open + 1..];
    let len = inside.iter().position(|&b| b == b'}')?;
    (len > 0).then(|| &inside[..len])
}

/// Commands the client sends to every master and combines (see the module doc): inside a
/// transaction, which runs on one node, they would answer for that node only.
const EVERY_MASTER: &[&str] = &[
    "DBSIZE",
    "FLUSHALL",
    "FLUSHDB",
    "INFO",
    "KEYS",
    "RANDOMKEY",
    "SCAN",
];

/// Why `command` cannot run over a cluster at all, or `None`.
pub(crate) fn refusal(command: &Command) -> Option<String> {
    (command.name() == "SCAN").then(|| {
        "ERR SCAN is not available over a Redis Cluster: its cursor walks one node. KEYS \
         (when enabled in BRIDGE_ADMIN_COMMANDS) runs on every master"
            .to_owned()
    })
}

/// Why `command` cannot be part of a cluster transaction, or `None`.
pub(crate) fn transaction_refusal(command: &Command) -> Option<String> {
    let name = command.name();
    EVERY_MASTER.contains(&name.as_str()).then(|| {
        format!(
            "ERR {name} cannot run inside a transaction over a Redis Cluster: it spans every \
             master, and a transaction runs on one"
        )
    })
}

/// A transaction's keys span slots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CrossSlot;

/// The one slot every key of a transaction lives in: `Ok(None)` if no command names a key,
/// [`CrossSlot`] if the keys span slots.
pub(crate) fn transaction_slot(commands: &[Command]) -> Result<Option<u16>, CrossSlot> {
    let mut found = None;
    for key in commands.iter().flat_map(keys) {
        let slot = slot(key);
        match found {
            Some(other) if other != slot => return Err(CrossSlot),
            _ => found = Some(slot),
        }
    }
    Ok(found)
}

/// Commands that name no key, though they may take arguments.
const KEYLESS: &[&str] = &[
    "DBSIZE",
    "ECHO",
    "FLUSHALL",
    "FLUSHDB",
    "FUNCTION",
    "INFO",
    "KEYS",
    "LASTSAVE",
    "LOLWUT",
    "PING",
    "PUBLISH",
    "RANDOMKEY",
    "SCAN",
    "SCRIPT",
    "TIME",
];

/// Commands whose every argument is a key.
const ALL_KEYS: &[&str] = &[
    "DEL",
    "EXISTS",
    "MGET",
    "PFCOUNT",
    "PFMERGE",
    "RENAME",
    "RENAMENX",
    "SDIFF",
    "SDIFFSTORE",
    "SINTER",
    "SINTERSTORE",
    "SUNION",
    "SUNIONSTORE",
    "TOUCH",
    "UNLINK",
];

/// Commands whose first two arguments are keys (source and destination).
const TWO_KEYS: &[&str] = &["COPY", "LCS", "LMOVE", "RPOPLPUSH", "SMOVE", "ZRANGESTORE"];

/// The keys `command` names, for the commands whose key positions are known; any other command
/// counts its first argument, as the cluster client routes it. A key missed here is not a hole:
/// Redis Cluster itself refuses a transaction whose keys span slots (at `EXEC`), so this check
/// only answers the common case early and with the same words.
pub(crate) fn keys(command: &Command) -> Vec<&[u8]> {
    let parts = command.parts();
    let args = parts.get(1..).unwrap_or_default();
    let name = command.name();
    let name = name.as_str();
    let counted = |count_at: usize| {
        let count = parts
            .get(count_at)
            .and_then(|n| std::str::from_utf8(n).ok()?.parse::<usize>().ok())
            .unwrap_or(0);
        parts
            .iter()
            .skip(count_at + 1)
            .take(count)
            .map(Vec::as_slice)
            .collect::<Vec<_>>()
    };
    if KEYLESS.contains(&name) {
        return Vec::new();
    }
    if ALL_KEYS.contains(&name) {
        return args.iter().map(Vec::as_slice).collect();
    }
    if TWO_KEYS.contains(&name) {
        return args.iter().take(2).map(Vec::as_slice).collect();
    }
    match name {
        "MSET" | "MSETNX" => args.iter().step_by(2).map(Vec::as_slice).collect(),
        "EVAL" | "EVALSHA" | "EVAL_RO" | "EVALSHA_RO" | "FCALL" | "FCALL_RO" => counted(2),
        "ZUNION" | "ZINTER" | "ZDIFF" | "ZINTERCARD" | "SINTERCARD" | "LMPOP" | "ZMPOP" => {
            counted(1)
        }
        "ZUNIONSTORE" | "ZINTERSTORE" | "ZDIFFSTORE" => {
            let mut keys = counted(2);
            keys.extend(args.first().map(Vec::as_slice));
            keys
        }
        "BITOP" => args.iter().skip(1).map(Vec::as_slice).collect(),
        "XREAD" | "XREADGROUP" => {
            let after = args
                .iter()
                .position(|arg| arg.eq_ignore_ascii_case(b"STREAMS"))
                .map_or(&[][..], |at| &args[at + 1..]);
            after[..after.len() / 2].iter().map(Vec::as_slice).collect()
        }
        _ => args.first().map(Vec::as_slice).into_iter().collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(json: &str) -> Command {
        crate::command::parse_one(json.as_bytes()).expect("valid")
    }

    #[test]
    fn slots_match_redis_cluster_and_hash_tags_pick_the_hashed_part() {
        // `CLUSTER KEYSLOT` answers these.
        assert_eq!(slot(b"foo"), 12182);
        assert_eq!(slot(b"somekey"), 11058);
        assert_eq!(slot(b"{user1000}.following"), slot(b"user1000"));
        assert_eq!(slot(b"{user1000}.followers"), slot(b"user1000"));
        // An empty tag is no tag; only the first `{…}` counts.
        assert_eq!(slot(b"foo{}{bar}"), slot(b"foo{}{bar}"));
        assert_ne!(slot(b"foo{}{bar}"), slot(b"bar"));
        assert_eq!(slot(b"foo{{bar}}zap"), slot(b"{bar"));
        assert_eq!(slot(b"foo{bar}{zap}"), slot(b"bar"));
        assert!(slot(b"") < SLOTS);
    }

    #[test]
    fn keys_are_found_where_each_command_keeps_them() {
        let keys = |json: &str| -> Vec<String> {
            keys(&cmd(json))
                .into_iter()
                .map(|k| String::from_utf8_lossy(k).into_owned())
                .collect()
        };
        assert_eq!(keys(r#"["GET","a"]"#), ["a"]);
        assert_eq!(keys(r#"["hmget","h","f1","f2"]"#), ["h"]);
        assert_eq!(keys(r#"["MGET","a","b"]"#), ["a", "b"]);
        assert_eq!(keys(r#"["MSET","a",1,"b",2]"#), ["a", "b"]);
        assert_eq!(keys(r#"["EVAL","return 1",2,"a","b","arg"]"#), ["a", "b"]);
        assert_eq!(
            keys(r#"["ZUNIONSTORE","d",2,"a","b","WEIGHTS",1,2]"#),
            ["a", "b", "d"]
        );
        assert_eq!(keys(r#"["SMOVE","a","b","member"]"#), ["a", "b"]);
        assert_eq!(keys(r#"["BITOP","AND","d","a","b"]"#), ["d", "a", "b"]);
        assert_eq!(
            keys(r#"["XREAD","COUNT",1,"STREAMS","s1","s2","0","0"]"#),
            ["s1", "s2"]
        );
        assert!(keys(r#"["PING","hello"]"#).is_empty());
        assert!(keys(r#"["ECHO","hello"]"#).is_empty());
        assert!(keys(r#"["EVAL","return 1","nonsense"]"#).is_empty());
    }

    #[test]
    fn a_transaction_has_one_slot_or_none() {
        let same = [
            cmd(r#"["SET","{u1}:a",1]"#),
            cmd(r#"["INCR","{u1}:b"]"#),
            cmd(r#"["PING"]"#),
        ];
        assert_eq!(transaction_slot(&same), Ok(Some(slot(b"u1"))));
        assert_eq!(transaction_slot(&[cmd(r#"["TIME"]"#)]), Ok(None));
        let (a, b) = ("a", "b");
        assert_ne!(slot(a.as_bytes()), slot(b.as_bytes()));
        let spread = [cmd(r#"["SET","a",1]"#), cmd(r#"["SET","b",1]"#)];
        assert_eq!(transaction_slot(&spread), Err(CrossSlot));
        assert_eq!(
            transaction_slot(&[cmd(r#"["MGET","a","b"]"#)]),
            Err(CrossSlot)
        );
    }

    #[test]
    fn scan_is_refused_and_every_master_commands_stay_out_of_transactions() {
        assert!(refusal(&cmd(r#"["scan","0"]"#)).is_some_and(|e| e.starts_with("ERR SCAN")));
        assert_eq!(refusal(&cmd(r#"["KEYS","*"]"#)), None);
        assert!(transaction_refusal(&cmd(r#"["KEYS","*"]"#)).is_some());
        assert!(transaction_refusal(&cmd(r#"["DBSIZE"]"#)).is_some());
        assert_eq!(transaction_refusal(&cmd(r#"["GET","k"]"#)), None);
    }
}
