//! `verity up`, `verity serve` and `verity user`: start the system and manage accounts.

use anyhow::Context;
use clap::{Args, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;
use verity_model::{AuditAction, AuditEvent, Ori, Purpose, Role};
use verity_server::config::{ConfigLayer, ServerConfig};
use verity_server::AppState;
use verity_store::{NewUser, Store};
use verity_workflow::credentials::{generate_secret, hash_password};
use verity_workflow::AccessPolicy;

/// Where the store lives and how the server listens. Flags beat environment beat file.
#[derive(Args, Clone, Default)]
pub struct ServerFlags {
    /// Address to listen on [env: VERITY_ADDR] [default: 127.0.0.1:8080]
    #[arg(long)]
    addr: Option<SocketAddr>,
    /// Data directory for the embedded SQLite store [env: VERITY_DATA] [default: ./verity-data]
    #[arg(long)]
    data: Option<PathBuf>,
    /// Store URL (postgres://… for production); overrides --data [env: VERITY_DATABASE_URL]
    #[arg(long)]
    database_url: Option<String>,
    /// Configuration file (TOML); default: <data>/verity.toml when it exists
    #[arg(long)]
    config: Option<PathBuf>,
    /// NATS JetStream server (host:port): bookings go to `verity worker` processes through it
    /// instead of being processed in the request [env: VERITY_NATS] [default: in process]
    #[arg(long, env = "VERITY_NATS")]
    nats: Option<String>,
}

/// JetStream stream that carries booking work between servers and workers.
const BOOKING_STREAM: &str = "VERITY_BOOKINGS";

/// The booking work queue on NATS, when `--nats` was given.
async fn booking_queue(
    flags: &ServerFlags,
) -> anyhow::Result<Option<verity_server::queue::WorkQueue>> {
    let Some(url) = &flags.nats else {
        return Ok(None);
    };
    let settings = verity_server::queue::NatsSettings {
        url: url.clone(),
        stream: BOOKING_STREAM.to_string(),
        ack_wait: std::time::Duration::from_secs(120),
    };
    let queue = verity_server::queue::WorkQueue::nats(&settings)
        .await
        .with_context(|| format!("connecting to NATS at {url} (--nats)"))?;
    Ok(Some(queue))
}

#[derive(Args)]
pub struct WorkerArgs {
    #[command(flatten)]
    server: ServerFlags,
}

#[derive(Args)]
pub struct UpArgs {
    #[command(flatten)]
    server: ServerFlags,
    /// People in the demo world generated on first start [env: VERITY_DEMO_PEOPLE] [default: 50000]
    #[arg(long)]
    demo_people: Option<u64>,
}

#[derive(Args)]
pub struct ServeArgs {
    #[command(flatten)]
    server: ServerFlags,
}

#[derive(Subcommand)]
pub enum UserCommand {
    /// Give an account a new one-time password (for a forgotten password); prints it once.
    ResetPassword {
        #[command(flatten)]
        server: ServerFlags,
        #[arg(long)]
        username: String,
    },
    /// Create an account; prints a one-time password.
    Add {
        #[command(flatten)]
        server: ServerFlags,
        #[arg(long)]
        username: String,
        /// One of: agency_user, lesc_specialist, lesc_deportation_officer, perc_officer,
        /// supervisor, ncatc_analyst, field_officer, auditor, admin (repeatable)
        #[arg(long = "role", required = true)]
        roles: Vec<String>,
        #[arg(long, default_value = "")]
        display_name: String,
        /// Agency ORI (required for agency users)
        #[arg(long)]
        agency: Option<String>,
    },
}

fn config_from(flags: &ServerFlags, demo_people: Option<u64>) -> anyhow::Result<ServerConfig> {
    let env = ConfigLayer::from_env(|k| std::env::var(k).ok())?;
    let cli = ConfigLayer {
        addr: flags.addr,
        data_dir: flags.data.clone(),
        database_url: flags.database_url.clone(),
        demo_people,
        ..Default::default()
    };
    // The file is found from the data dir that env/flags name, so resolve that first.
    let data_dir = cli
        .data_dir
        .clone()
        .or(env.data_dir.clone())
        .unwrap_or_else(|| ServerConfig::default().data_dir);
    let file_path = flags.config.clone().or_else(|| {
        let p = data_dir.join("verity.toml");
        p.exists().then_some(p)
    });
    let file = file_path
        .as_deref()
        .map(ConfigLayer::from_file)
        .transpose()?;
    Ok(ServerConfig::layered(file, env, cli))
}

async fn open_store(cfg: &ServerConfig) -> anyhow::Result<Store> {
    match &cfg.database_url {
        Some(url) => Store::open(url)
            .await
            .with_context(|| "opening the store named by --database-url"),
        None => Store::open_data_dir(&cfg.data_dir)
            .await
            .with_context(|| format!("opening the data dir {}", cfg.data_dir.display())),
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

fn init_logging() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,sqlx=warn".into()),
        )
        .with_writer(std::io::stderr)
        .try_init();
}

/// Loads and validates every embedded table and policy file, so that a bad one stops the start
/// with its file, line and reason instead of failing the first query that needs it.
fn validate_data_files() -> anyhow::Result<()> {
    let reference = verity_model::Reference::embedded().context("reference tables")?;
    let status = verity_policy::StatusRules::embedded().context("status rules")?;
    let priority =
        verity_policy::PriorityPolicy::embedded(&reference.offenses).context("priority policy")?;
    let leads = verity_policy::LeadPolicy::embedded(&priority).context("lead policy")?;
    verity_workflow::lesc::LescPolicy::embedded().context("LESC policy")?;
    verity_workflow::hold_clock::HolidayCalendar::embedded().context("holiday calendar")?;
    let names =
        verity_names::validate_embedded().map_err(|e| anyhow::anyhow!("name tables: {e}"))?;
    tracing::info!(
        status_rules = %status.version,
        priority = %priority.version,
        leads = %leads.version,
        names = %names,
        "data files valid"
    );
    Ok(())
}

/// Creates the first administrator when the store has no accounts. Returns its one-time password.
async fn ensure_admin(store: &Store) -> anyhow::Result<Option<String>> {
    if !store.list_users().await?.is_empty() {
        return Ok(None);
    }
    let password = generate_secret(20);
    store
        .create_user(&NewUser {
            username: "admin".into(),
            display_name: "Administrator".into(),
            password_hash: hash_password(&password)?,
            roles: vec![Role::Admin],
            agency_ori: None,
        })
        .await?;
    store
        .append_audit(AuditEvent {
            actor: "system".into(),
            agency: None,
            purpose: Purpose::Administration,
            action: AuditAction::UserCreated {
                username: "admin".into(),
                roles: vec![Role::Admin.to_string()],
            },
        })
        .await?;
    Ok(Some(password))
}

const DEMO_FLAG: &str = "demo_world_loaded";

async fn ensure_demo_world(store: &Store, cfg: &ServerConfig) -> anyhow::Result<()> {
    if store.get_meta(DEMO_FLAG).await?.is_some() {
        return Ok(());
    }
    let world_dir = cfg.data_dir.join("demo-world");
    eprintln!(
        "First start: generating a synthetic demo world of {} people in {}",
        cfg.demo_people,
        world_dir.display()
    );
    let synth = verity_synth::SynthConfig {
        people: cfg.demo_people,
        seed: 1,
        out: world_dir.clone(),
        progress: true,
    };
    tokio::task::spawn_blocking(move || verity_synth::generate_world(&synth))
        .await
        .context("demo world generator stopped")??;
    eprintln!("Importing the demo world into the store");
    let summary =
        verity_store::import_world(store, &world_dir, &verity_store::ImportOptions::default())
            .await?;
    store
        .set_meta(
            DEMO_FLAG,
            &format!("{} people, {} records", cfg.demo_people, summary.records),
        )
        .await?;
    Ok(())
}

fn announce(cfg: &ServerConfig, password: Option<String>) {
    println!();
    println!("Verity is running.");
    println!("  Console:  http://{}/", cfg.addr);
    println!(
        "  Health:   http://{}/healthz    Metrics: http://{}/metrics",
        cfg.addr, cfg.addr
    );
    match &cfg.database_url {
        Some(_) => println!("  Store:    the database named by --database-url"),
        None => println!(
            "  Store:    {}",
            cfg.data_dir.join(verity_store::SQLITE_FILE_NAME).display()
        ),
    }
    match password {
        Some(pw) => {
            println!("  Log in as: admin");
            println!("  One-time password: {pw}");
            println!(
                "  (shown once; create staff accounts under Users, or with `verity user add`)"
            );
        }
        None => {
            println!("  Log in with your account (the admin password was printed at first start).")
        }
    }
    println!("Press Ctrl-C to stop.");
}

async fn start(
    cfg: ServerConfig,
    with_demo: bool,
    queue: Option<verity_server::queue::WorkQueue>,
) -> anyhow::Result<()> {
    if cfg.database_url.is_none() {
        std::fs::create_dir_all(&cfg.data_dir)
            .with_context(|| format!("creating the data dir {}", cfg.data_dir.display()))?;
    }
    let access = AccessPolicy::embedded()?;
    validate_data_files()?;
    let store = open_store(&cfg).await?;
    if with_demo {
        ensure_demo_world(&store, &cfg).await?;
    }
    let password = ensure_admin(&store).await?;
    let addr = cfg.addr;
    let (engine, snapshot) = build_engine(&store, &cfg).await?;
    let state = AppState::new(store.clone(), access, cfg.clone())
        .with_engine_and_snapshot(engine, snapshot)
        .map_err(|e| anyhow::anyhow!("LESC runtime: {e}"))?;
    // Queries acknowledged but not processed before the last stop are processed first.
    let recovered = state.recover_lesc().await?;
    if recovered > 0 {
        eprintln!("Processed {recovered} queries that were acknowledged before the last stop");
    }
    state.start_lesc();
    if let Some(queue) = queue {
        verity_server::bookings::use_queue(&state, queue);
        eprintln!("Bookings go to `verity worker` processes through NATS ({BOOKING_STREAM})");
    }
    // The fingerprint gallery builds in the background; bookings that arrive first wait for it.
    // VERITY_GALLERY_AT_START=0 leaves the build to the first booking instead: at 1,000,000
    // people it takes many minutes of CPU, which load measurements of other services must not
    // share.
    if std::env::var("VERITY_GALLERY_AT_START").as_deref() != Ok("0") {
        verity_server::bookings::start(&state);
    } else {
        eprintln!("Booking gallery: built on the first booking (VERITY_GALLERY_AT_START=0)");
    }
    let resumed = verity_server::bookings::resume_unfinished(&state)
        .await
        .map_err(|e| anyhow::anyhow!("resuming unfinished bookings: {e}"))?;
    if resumed > 0 {
        eprintln!("Resumed {resumed} bookings that were acknowledged before the last stop");
    }
    if with_demo {
        ensure_demo_queries(&state, &store, &cfg).await?;
    }
    announce(&cfg, password);
    verity_server::serve(state, addr).await
}

/// File (in the data dir) holding the identity model the LESC engine was built with.
const MODEL_FILE: &str = "lesc-model.json";
/// Records read per page while building the index.
const SCAN_PAGE: u32 = 50_000;

/// Builds the LESC engine's index from every record in the store, with the model saved in
/// the data dir (trained and saved on first start).
async fn build_engine(
    store: &Store,
    cfg: &ServerConfig,
) -> anyhow::Result<(
    verity_workflow::lesc::engine::Engine,
    verity_workflow::lesc::snapshot::RecordSnapshot,
)> {
    use std::io::Write;
    super::store::finish_pending_bulk_load(store).await?;
    let started = std::time::Instant::now();
    let total = store.count_records().await?;
    let (records, snapshot) = verity_server::read_records_for_engine(store, SCAN_PAGE, |read| {
        eprint!("\rBuilding the LESC index: {read} of {total} records read");
        let _ = std::io::stderr().flush();
    })
    .await?;
    eprintln!();
    let model_path = cfg.data_dir.join(MODEL_FILE);
    let saved = std::fs::read_to_string(&model_path).ok();
    let rules = verity_policy::StatusRules::embedded().context("status rules")?;
    let policy = verity_workflow::lesc::LescPolicy::embedded().context("LESC policy")?;
    let count = records.len();
    let engine = tokio::task::spawn_blocking(move || {
        use verity_workflow::lesc::engine::Engine;
        match saved.as_deref() {
            Some(text) => match Engine::build(
                records.iter().cloned(),
                Some(text),
                rules.clone(),
                policy.clone(),
            ) {
                Ok(e) => Ok((e, false)),
                Err(e) => {
                    eprintln!("The saved model could not be used ({e}); training a new one");
                    Engine::build(records.into_iter(), None, rules, policy).map(|e| (e, true))
                }
            },
            None => Engine::build(records.into_iter(), None, rules, policy).map(|e| (e, true)),
        }
    })
    .await
    .context("LESC index builder stopped")?
    .context("building the LESC engine")?;
    let (engine, trained) = engine;
    if trained {
        std::fs::create_dir_all(&cfg.data_dir)
            .with_context(|| format!("creating the data dir {}", cfg.data_dir.display()))?;
        std::fs::write(&model_path, engine.model_json())
            .with_context(|| format!("saving the model to {}", model_path.display()))?;
    }
    eprintln!(
        "LESC index ready: {count} records in {:.1} s ({}); records held in memory: {:.0} MB",
        started.elapsed().as_secs_f64(),
        if trained {
            "model trained and saved"
        } else {
            "saved model loaded"
        },
        snapshot.heap_bytes() as f64 / 1e6
    );
    Ok((engine, snapshot))
}

const DEMO_QUERIES_FLAG: &str = "demo_queries_submitted";
/// Queries submitted on first start so the console has a queue, answers and PERC cases.
const DEMO_QUERIES: usize = 300;
/// Queries written to `<data>/demo-world/queries/iaq.jsonl` for the load scripts.
const LOAD_QUERIES: usize = 2000;

/// On first start, submits generated queries from the demo world's agencies (as POST /v1/iaq
/// would) and a few NCIC hit confirmation requests.
async fn ensure_demo_queries(
    state: &AppState,
    store: &Store,
    cfg: &ServerConfig,
) -> anyhow::Result<()> {
    if store.get_meta(DEMO_QUERIES_FLAG).await?.is_some() {
        return Ok(());
    }
    let people = cfg.demo_people;
    let world_dir = cfg.data_dir.join("demo-world");
    let generated = tokio::task::spawn_blocking(move || {
        let all = verity_synth::queries::generate_queries(1, people, LOAD_QUERIES, 2026);
        // The load and durability scripts replay these (with fresh message ids).
        verity_synth::queries::write_queries(&world_dir, &all).map(|()| all)
    })
    .await
    .context("demo query generator stopped")?
    .context("writing the demo query set")?;
    let started = std::time::Instant::now();
    let (mut answered, mut review, mut refused) = (0usize, 0usize, 0usize);
    for q in generated.iter().take(DEMO_QUERIES) {
        let Ok(ori) = Ori::parse(&q.ori) else {
            refused += 1;
            continue;
        };
        let body = serde_json::to_vec(&q.body)?;
        match state.submit_iaq_json(&ori, &body).await {
            Ok((_, st)) if st == "answered" => answered += 1,
            Ok(_) => review += 1,
            Err(e) => {
                refused += 1;
                tracing::warn!(ori = %ori, problem = %e, "demo query refused");
            }
        }
    }
    let now = chrono::Utc::now();
    for (i, (priority, minutes_ago)) in [("U", 2i64), ("U", 7), ("R", 5), ("R", 45), ("R", 70)]
        .into_iter()
        .enumerate()
    {
        let Some(q) = generated.get(i) else { break };
        let received = now - chrono::Duration::minutes(minutes_ago);
        let limit = if priority == "U" { 10 } else { 60 };
        store
            .insert_hit(&verity_store::queries::NewHit {
                hit_id: format!("H-demo-{i}"),
                ori: q.ori.clone(),
                message_id: format!("demo-yq-{i}"),
                priority: priority.into(),
                received_micros: received.timestamp_micros(),
                deadline_micros: (received + chrono::Duration::minutes(limit)).timestamp_micros(),
                request_json: serde_json::json!({
                    "message_id": format!("demo-yq-{i}"),
                    "priority": priority,
                    "ncic_number": format!("V{:09}", 100_000 + i),
                    "name": q.body.get("name").cloned().unwrap_or_default(),
                })
                .to_string(),
            })
            .await?;
    }
    store
        .set_meta(
            DEMO_QUERIES_FLAG,
            &format!("{answered} answered, {review} for review, {refused} refused"),
        )
        .await?;
    eprintln!(
        "Demo queries: {answered} answered automatically, {review} for specialist review, {refused} refused ({:.1} s)",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

pub fn up(a: UpArgs) -> anyhow::Result<()> {
    init_logging();
    let cfg = config_from(&a.server, a.demo_people)?;
    runtime()?.block_on(async {
        let queue = booking_queue(&a.server).await?;
        start(cfg, true, queue).await
    })
}

pub fn serve(a: ServeArgs) -> anyhow::Result<()> {
    init_logging();
    let cfg = config_from(&a.server, None)?;
    runtime()?.block_on(async {
        let queue = booking_queue(&a.server).await?;
        start(cfg, false, queue).await
    })
}

/// `verity worker`: takes bookings from the NATS queue that `verity serve --nats` fills and
/// processes them (1:N identification, then the IAQ) against the same store, until stopped.
/// Any number of workers may share the queue; an item is acknowledged only once its booking
/// is done or failed, so a killed worker's booking goes to another.
pub fn worker(a: WorkerArgs) -> anyhow::Result<()> {
    init_logging();
    let cfg = config_from(&a.server, None)?;
    if a.server.nats.is_none() {
        anyhow::bail!("--nats: a worker needs the NATS server the bookings are queued on");
    }
    runtime()?.block_on(async {
        let queue = booking_queue(&a.server)
            .await?
            .context("--nats: no queue")?;
        let access = AccessPolicy::embedded()?;
        validate_data_files()?;
        let store = open_store(&cfg).await?;
        let (engine, snapshot) = build_engine(&store, &cfg).await?;
        let state = AppState::new(store, access, cfg.clone())
            .with_engine_and_snapshot(engine, snapshot)
            .map_err(|e| anyhow::anyhow!("LESC runtime: {e}"))?;
        state.start_lesc();
        verity_server::bookings::start(&state);
        eprintln!("Worker ready: taking bookings from NATS ({BOOKING_STREAM})");
        verity_server::bookings::run_worker(&state, &queue, None)
            .await
            .map_err(|e| anyhow::anyhow!("booking worker: {e}"))?;
        Ok(())
    })
}

/// Opens the store the flags name and runs `work` on it, for one-shot admin commands.
pub fn open_store_with<F, Fut>(flags: &ServerFlags, work: F) -> anyhow::Result<()>
where
    F: FnOnce(Store) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let cfg = config_from(flags, None)?;
    runtime()?.block_on(async {
        let store = open_store(&cfg).await?;
        work(store).await
    })
}

pub fn user(c: UserCommand) -> anyhow::Result<()> {
    let (server, username, roles, display_name, agency) = match c {
        UserCommand::ResetPassword { server, username } => {
            return reset_password(&server, username)
        }
        UserCommand::Add {
            server,
            username,
            roles,
            display_name,
            agency,
        } => (server, username, roles, display_name, agency),
    };
    let roles = roles
        .iter()
        .map(|r| Role::parse(r).map_err(|e| anyhow::anyhow!("--role: {}", e.problem)))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let agency = agency
        .map(|a| Ori::parse(&a).map_err(|e| anyhow::anyhow!("--agency: {}", e.problem)))
        .transpose()?;
    if roles.contains(&Role::AgencyUser) && agency.is_none() {
        anyhow::bail!("--agency: an agency user must belong to an agency");
    }
    open_store_with(&server, |store| async move {
        if store.get_user(&username).await?.is_some() {
            anyhow::bail!("--username: '{username}' already exists");
        }
        let password = generate_secret(20);
        store
            .create_user(&NewUser {
                username: username.clone(),
                display_name,
                password_hash: hash_password(&password)?,
                roles: roles.clone(),
                agency_ori: agency,
            })
            .await?;
        store
            .append_audit(AuditEvent {
                actor: "cli".into(),
                agency: None,
                purpose: Purpose::Administration,
                action: AuditAction::UserCreated {
                    username: username.clone(),
                    roles: roles.iter().map(|r| r.to_string()).collect(),
                },
            })
            .await?;
        println!("created {username}; one-time password: {password}");
        Ok(())
    })
}

fn reset_password(server: &ServerFlags, username: String) -> anyhow::Result<()> {
    open_store_with(server, |store| async move {
        if store.get_user(&username).await?.is_none() {
            anyhow::bail!("--username: no account '{username}'");
        }
        let password = generate_secret(20);
        store
            .set_password_hash(&username, &hash_password(&password)?)
            .await?;
        store
            .append_audit(AuditEvent {
                actor: "cli".into(),
                agency: None,
                purpose: Purpose::Administration,
                action: AuditAction::Decision {
                    subject: format!("user:{username}"),
                    decision: "password reset".into(),
                    reason: "operator reset from the command line".into(),
                },
            })
            .await?;
        println!("new one-time password for {username}: {password}");
        Ok(())
    })
}
