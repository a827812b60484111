//! The #[napi] surface of `docker cp` (core container/copy.rs): tar archives out of and into a
//! running container (pid > 0) or the host (pid 0), on the libuv threadpool.

use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::container::copy::{self, CopyError, Owner};

fn failed(e: CopyError) -> Error {
    Error::from_reason(e.to_string())
}

/// A tar archive of `path` (its top entry is the base name), at most `limit` bytes.
#[napi(ts_return_type = "Promise<Buffer>")]
pub fn copy_out(pid: i32, start: Option<f64>, path: String, limit: f64) -> AsyncTask<CopyOut> {
    AsyncTask::new(CopyOut {
        pid,
        start: start.map(|s| s as u64),
        path,
        limit: limit as u64,
    })
}

pub struct CopyOut {
    pid: i32,
    start: Option<u64>,
    path: String,
    limit: u64,
}

impl Task for CopyOut {
    type Output = Vec<u8>;
    type JsValue = Buffer;

    fn compute(&mut self) -> Result<Self::Output> {
        match self.pid {
            0 => copy::archive(libc::AT_FDCWD, &self.path, 0, self.limit),
            pid => copy::archive_from(pid, self.start, &self.path, self.limit),
        }
        .map_err(failed)
    }

    fn resolve(&mut self, _env: Env, out: Self::Output) -> Result<Self::JsValue> {
        Ok(out.into())
    }
}

/// Unpacks the tar archive `data` into the directory `path` (`rename_top`: its top entry's new name).
#[napi(ts_return_type = "Promise<void>")]
pub fn copy_in(
    pid: i32,
    start: Option<f64>,
    path: String,
    data: Buffer,
    rename_top: Option<String>,
) -> AsyncTask<CopyIn> {
    AsyncTask::new(CopyIn {
        pid,
        start: start.map(|s| s as u64),
        path,
        data: data.to_vec(),
        rename_top,
    })
}

pub struct CopyIn {
    pid: i32,
    start: Option<u64>,
    path: String,
    data: Vec<u8>,
    rename_top: Option<String>,
}

impl Task for CopyIn {
    type Output = ();
    type JsValue = ();

    fn compute(&mut self) -> Result<Self::Output> {
        let rename = self.rename_top.as_deref();
        match self.pid {
            0 => {
                let me = Owner {
                    uid: unsafe { libc::getuid() },
                    gid: unsafe { libc::getgid() },
                };
                copy::extract(libc::AT_FDCWD, &self.path, 0, &self.data, me, rename)
            }
            pid => copy::extract_into(pid, self.start, &self.path, &self.data, rename),
        }
        .map_err(failed)
    }

    fn resolve(&mut self, _env: Env, _: Self::Output) -> Result<Self::JsValue> {
        Ok(())
    }
}
