//! The function: its configuration, its pool of instances and the Invoke API.

use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tracing::Instrument;

use crate::error::{Error, Result};
use crate::instance::{Instance, Outcome, Spec};
use crate::logs::lock;
use crate::runtime_api::FunctionInfo;

/// Largest event Lambda accepts for a synchronous invocation (6 MB).
pub const MAX_PAYLOAD_BYTES: usize = 6_291_456;
/// How long `shutdown` gives a runtime between SIGTERM and SIGKILL (Lambda's figure with
/// an extension registered).
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// How to run the function.
#[derive(Debug, Clone)]
pub struct Config {
    /// The custom runtime binary (`bootstrap`).
    pub runtime: PathBuf,
    /// `LAMBDA_TASK_ROOT`, and the runtime's working directory.
    pub task_root: PathBuf,
    /// `AWS_LAMBDA_FUNCTION_NAME`, and the last part of the function ARN.
    pub function_name: String,
    /// Appended to the invoked function ARN (`:staging`), like an alias.
    pub qualifier: Option<String>,
    /// `AWS_LAMBDA_FUNCTION_MEMORY_SIZE` in MB (not enforced).
    pub memory_mb: u32,
    /// The function timeout: how long one invocation may run (and, on a cold start, how
    /// long the init may take before the runtime takes the event).
    pub timeout: Duration,
    /// Extra variables for the runtime (`UP_STAGE`, the function's environment).
    pub env: Vec<(String, String)>,
    /// Give the runtime this process's whole environment rather than only `PATH`, `HOME`,
    /// `LANG` and a few others (Lambda gives none of the host's).
    pub inherit_env: bool,
    /// How many instances may run at once.
    pub max_instances: NonZeroUsize,
    /// Write `AWS_LAMBDA_RUNTIME_API` as `http://127.0.0.1:PORT` instead of `127.0.0.1:PORT`.
    pub runtime_api_with_scheme: bool,
    /// Copy every runtime output line to this process's stderr as well.
    pub echo_logs: bool,
}

impl Config {
    /// Defaults: function `up-local`, 512 MB, 60 s, one instance, no extra environment.
    pub fn new(runtime: impl Into<PathBuf>, task_root: impl Into<PathBuf>) -> Self {
        Self {
            runtime: runtime.into(),
            task_root: task_root.into(),
            function_name: "up-local".to_owned(),
            qualifier: None,
            memory_mb: 512,
            timeout: Duration::from_secs(60),
            env: Vec::new(),
            inherit_env: false,
            max_instances: NonZeroUsize::MIN,
            runtime_api_with_scheme: false,
            echo_logs: false,
        }
    }

    /// The ARN invocations report in `Lambda-Runtime-Invoked-Function-Arn`.
    pub fn function_arn(&self) -> String {
        let mut arn = format!(
            "arn:aws:lambda:{}:{}:function:{}",
            crate::REGION,
            crate::ACCOUNT_ID,
            self.function_name
        );
        if let Some(qualifier) = &self.qualifier {
            arn.push(':');
            arn.push_str(qualifier);
        }
        arn
    }
}

/// The result of one invocation.
#[derive(Debug, Clone)]
pub struct Invocation {
    /// The request id the runtime saw in `Lambda-Runtime-Aws-Request-Id`.
    pub request_id: String,
    /// Which instance served it ([`Instance::index`]).
    pub instance: usize,
    /// That instance's runtime pid.
    pub pid: u32,
    /// Whether the invocation included the instance's init (a cold start).
    pub cold: bool,
    /// How long it took, init included.
    pub duration: Duration,
    /// How it ended.
    pub outcome: Outcome,
}

/// A local Lambda function: a pool of at most `max_instances` instances of one runtime.
/// Cheap to clone; clones share the pool.
#[derive(Debug, Clone)]
pub struct Emulator {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: Config,
    spec: Spec,
    /// One permit per instance that may serve at a time.
    slots: Arc<Semaphore>,
    pool: Mutex<Pool>,
    next_index: AtomicUsize,
}

#[derive(Debug, Default)]
struct Pool {
    idle: Vec<Arc<Instance>>,
    busy: Vec<Arc<Instance>>,
    closed: bool,
}

impl Emulator {
    /// Starts the first instance and returns without waiting for it to be ready.
    pub async fn start(config: Config) -> Result<Self> {
        let resolve = |what, path: &PathBuf| {
            std::fs::canonicalize(path).map_err(|source| Error::NotFound {
                what,
                path: path.clone(),
                source,
            })
        };
        let runtime = resolve("runtime binary", &config.runtime)?;
        let task_root = resolve("task root", &config.task_root)?;
        let spec = Spec {
            runtime,
            task_root,
            function: FunctionInfo {
                name: config.function_name.clone(),
                version: crate::FUNCTION_VERSION.to_owned(),
                arn: config.function_arn(),
                timeout: config.timeout,
            },
            memory_mb: config.memory_mb,
            env: config.env.clone(),
            inherit_env: config.inherit_env,
            runtime_api_with_scheme: config.runtime_api_with_scheme,
            echo_logs: config.echo_logs,
        };
        let emulator = Self {
            inner: Arc::new(Inner {
                slots: Arc::new(Semaphore::new(config.max_instances.get())),
                config,
                spec,
                pool: Mutex::new(Pool::default()),
                next_index: AtomicUsize::new(0),
            }),
        };
        let first = emulator.start_instance().await?;
        lock(&emulator.inner.pool).idle.push(first);
        Ok(emulator)
    }

    /// The configuration it was started with.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The live instances (idle and busy), in start order.
    pub fn instances(&self) -> Vec<Arc<Instance>> {
        let pool = lock(&self.inner.pool);
        let mut all: Vec<_> = pool.idle.iter().chain(&pool.busy).cloned().collect();
        all.sort_by_key(|i| i.index());
        all
    }

    /// Invokes the function with `payload` (RequestResponse): takes an idle instance
    /// (preferring a ready one), else starts one if fewer than `max_instances` run, else
    /// waits for one to be free.
    pub async fn invoke(&self, payload: Bytes) -> Result<Invocation> {
        if payload.len() > MAX_PAYLOAD_BYTES {
            return Err(Error::PayloadTooLarge {
                size: payload.len(),
                limit: MAX_PAYLOAD_BYTES,
            });
        }
        let lease = self.checkout().await?;
        let instance = Arc::clone(lease.instance());
        let request_id = uuid::Uuid::new_v4().to_string();
        let span =
            tracing::info_span!("invoke", request_id = %request_id, instance = instance.index());
        async move {
            let cold = !instance.is_ready();
            let started = Instant::now();
            let outcome = instance
                .invoke(&request_id, payload, self.inner.config.timeout)
                .await;
            let duration = started.elapsed();
            tracing::debug!(
                cold,
                duration_ms = duration.as_millis(),
                ?outcome,
                "invocation done"
            );
            lease.release(outcome.keeps_instance()).await;
            Ok(Invocation {
                request_id,
                instance: instance.index(),
                pid: instance.pid(),
                cold,
                duration,
                outcome,
            })
        }
        .instrument(span)
        .await
    }

    /// Waits at most `timeout` until an instance is ready (has called `/next`), starting one
    /// if none runs. Fails with [`Error::Init`] when that instance fails its init; the failed
    /// instance is discarded, so the next invocation starts afresh.
    pub async fn wait_ready(&self, timeout: Duration) -> Result<()> {
        if self
            .instances()
            .iter()
            .any(|i| i.is_ready() && !i.has_exited())
        {
            return Ok(());
        }
        let deadline = tokio::time::Instant::now() + timeout;
        let lease = tokio::time::timeout_at(deadline, self.checkout())
            .await
            .map_err(|_| Error::NotReady(timeout))??;
        let instance = Arc::clone(lease.instance());
        // Back to the pool at once: an invocation may take it while we watch.
        lease.release(true).await;
        let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
        let ready = instance.wait_ready(remaining).await;
        if let Err(Error::Init(_)) = &ready {
            lock(&self.inner.pool)
                .idle
                .retain(|i| !Arc::ptr_eq(i, &instance));
            instance.kill().await;
        }
        ready.map_err(|err| match err {
            Error::NotReady(_) => Error::NotReady(timeout),
            other => other,
        })
    }

    /// Shuts every instance down gracefully (see [`Instance::shutdown`]) and refuses
    /// further invocations.
    pub async fn shutdown(&self) {
        self.inner.slots.close();
        let all = {
            let mut pool = lock(&self.inner.pool);
            pool.closed = true;
            let mut all = std::mem::take(&mut pool.idle);
            all.extend(pool.busy.iter().cloned());
            all
        };
        let tasks: Vec<_> = all
            .into_iter()
            .map(|instance| tokio::spawn(async move { instance.shutdown(SHUTDOWN_GRACE).await }))
            .collect();
        for task in tasks {
            let _ = task.await;
        }
    }

    /// Takes a permit, then an idle instance or a new one.
    async fn checkout(&self) -> Result<Lease> {
        let permit = Arc::clone(&self.inner.slots)
            .acquire_owned()
            .await
            .map_err(|_| Error::ShutDown)?;
        let found = {
            let mut pool = lock(&self.inner.pool);
            if pool.closed {
                return Err(Error::ShutDown);
            }
            // An instance whose runtime died after serving is replaced, as in Lambda. One that
            // never got ready stays, so the invocation reports its init failure.
            pool.idle.retain(|i| !(i.is_ready() && i.has_exited()));
            let pick = pool
                .idle
                .iter()
                .position(|i| i.is_ready())
                .or_else(|| (!pool.idle.is_empty()).then_some(0));
            pick.map(|at| {
                let instance = pool.idle.swap_remove(at);
                pool.busy.push(Arc::clone(&instance));
                instance
            })
        };
        let instance = match found {
            Some(instance) => instance,
            None => {
                // Holding a permit with no idle instance means fewer than max run.
                let instance = self.start_instance().await?;
                let mut pool = lock(&self.inner.pool);
                if pool.closed {
                    return Err(Error::ShutDown);
                }
                pool.busy.push(Arc::clone(&instance));
                instance
            }
        };
        Ok(Lease {
            inner: Arc::clone(&self.inner),
            instance,
            released: false,
            _permit: permit,
        })
    }

    async fn start_instance(&self) -> Result<Arc<Instance>> {
        let index = self.inner.next_index.fetch_add(1, Ordering::Relaxed);
        Ok(Arc::new(Instance::start(index, &self.inner.spec).await?))
    }
}

/// An instance lent to one invocation, with the permit that counts it. Dropped without
/// [`Lease::release`] (a cancelled invocation), it kills the instance: the runtime may still
/// be working on an event nobody waits for.
#[derive(Debug)]
struct Lease {
    inner: Arc<Inner>,
    instance: Arc<Instance>,
    released: bool,
    _permit: OwnedSemaphorePermit,
}

impl Lease {
    fn instance(&self) -> &Arc<Instance> {
        &self.instance
    }

    /// Returns the instance to the idle list when `keep`, else kills it. The permit is
    /// released after, so a waiting invocation finds the instance.
    async fn release(mut self, keep: bool) {
        self.released = true;
        let instance = Arc::clone(&self.instance);
        let discarded = {
            let mut pool = lock(&self.inner.pool);
            pool.busy.retain(|i| !Arc::ptr_eq(i, &instance));
            if keep && !pool.closed && !instance.has_exited() {
                pool.idle.push(Arc::clone(&instance));
                false
            } else {
                true
            }
        };
        if discarded {
            instance.kill().await;
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if !self.released {
            lock(&self.inner.pool)
                .busy
                .retain(|i| !Arc::ptr_eq(i, &self.instance));
            self.instance.start_kill();
        }
    }
}
