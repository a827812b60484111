//! The exec step: argv and envp as C arrays, and the paths to try (PATH search happens
//! before clone, so the child only walks a list).

use std::ffi::CString;

use crate::child::ExecPlan;
use crate::spec::{cstring, SpecError};

/// The paths `command` is tried at, as execvp would: itself if it has a slash, else each
/// directory of `env`'s PATH (docker's default PATH without one).
pub fn search_path(command: &str, env: &[String]) -> Vec<String> {
    if command.contains('/') {
        return vec![command.to_owned()];
    }
    let path = env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    path.split(':')
        .map(|dir| if dir.is_empty() { "." } else { dir })
        .map(|dir| format!("{}/{command}", dir.trim_end_matches('/')))
        .collect()
}

/// `init`: the fd of lonely-init, which then runs `args` as its child (`init -- args...`).
/// `hold`: lonely-init first waits on that fd (`--hold N`), then with `in_place` execs `args`
/// itself rather than as its child (a created container without `init`).
pub fn exec_plan(
    args: &[String],
    env: &[String],
    init: Option<i32>,
    hold: Option<(i32, bool)>,
) -> Result<ExecPlan, SpecError> {
    if let Some(fd) = init {
        let mut wrapped = vec![crate::programs::INIT.name.to_owned()];
        if let Some((hold, in_place)) = hold {
            wrapped.extend(["--hold".to_owned(), hold.to_string()]);
            if in_place {
                wrapped.push("--exec".into());
            }
        }
        if !args.is_empty() {
            wrapped.push("--".into());
            wrapped.extend(args.iter().cloned());
        }
        let mut plan = exec_plan(&wrapped, env, None, None)?;
        plan.candidates.clear();
        plan.fd = fd;
        return Ok(plan);
    }
    let argv: Vec<CString> = args
        .iter()
        .map(|a| cstring("argv", a))
        .collect::<Result<_, _>>()?;
    let envp: Vec<CString> = env
        .iter()
        .map(|e| cstring("env", e))
        .collect::<Result<_, _>>()?;
    let candidates = search_path(&args[0], env)
        .iter()
        .map(|c| cstring("argv", c))
        .collect::<Result<_, _>>()?;
    let pointers = |v: &[CString]| {
        v.iter()
            .map(|c| c.as_ptr())
            .chain(std::iter::once(std::ptr::null()))
            .collect()
    };
    Ok(ExecPlan {
        candidates,
        fd: -1,
        argv: pointers(&argv),
        envp: pointers(&envp),
        _argv: argv,
        _envp: envp,
    })
}
