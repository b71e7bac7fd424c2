//! Lua scripts, run with EVALSHA and, when the server lacks the script (a
//! restarted or new node), with EVAL on the same key. Not redis-rs's
//! `Script::invoke_async`: its fallback sends SCRIPT LOAD, which the cluster
//! client routes to every node, so one unreachable master (or one still
//! reconnecting) would fail scripts on every slot.

use redis::{Cmd, ErrorKind, FromRedisValue, Script, ServerErrorKind, ToRedisArgs};

use super::{BackendError, RedisBackend};

/// A script's source and its SHA1 (computed by redis-rs).
pub(crate) struct Lua {
    code: &'static str,
    hash: String,
}

impl Lua {
    pub(crate) fn new(code: &'static str) -> Self {
        Lua {
            code,
            hash: Script::new(code).get_hash().to_owned(),
        }
    }

    fn cmd(verb: &str, body: &str, keys: &[&str], args: &[Vec<u8>]) -> Cmd {
        let mut cmd = redis::cmd(verb);
        cmd.arg(body).arg(keys.len()).arg(keys).arg(args);
        cmd
    }
}

/// Encodes one script argument.
pub(crate) fn arg(value: impl ToRedisArgs) -> Vec<u8> {
    value.to_redis_args().concat()
}

impl RedisBackend {
    /// Runs `lua` on `keys` (all in one slot) under the command timeout.
    pub(crate) async fn eval<T: FromRedisValue>(
        &self,
        what: &str,
        lua: &Lua,
        keys: &[&str],
        args: &[Vec<u8>],
    ) -> Result<T, BackendError> {
        let mut conn = self.conn.clone();
        let call = async {
            let by_hash = Lua::cmd("EVALSHA", &lua.hash, keys, args);
            match by_hash.query_async(&mut conn).await {
                Err(e) if e.kind() == ErrorKind::Server(ServerErrorKind::NoScript) => {
                    Lua::cmd("EVAL", lua.code, keys, args)
                        .query_async(&mut conn)
                        .await
                }
                other => other,
            }
        };
        self.run(what, call).await
    }
}
