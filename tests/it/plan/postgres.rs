//! A real PostgreSQL for the SQL differential test: a fresh cluster in a temp dir (`initdb`,
//! `pg_ctl` as the `postgres` user, `fsync=off`, a free loopback port), stopped on drop; and the
//! test that the generated `WHERE` fragment selects exactly the rows `/v1/authorize` allows.

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
    process::Command,
};

use serde_json::Value;
use tokio_postgres::{types::ToSql, Client, NoTls};

use super::universe::{cases, Resource, PRINCIPALS};
use crate::common::TestApp;

const BIN: &str = "/usr/lib/postgresql/15/bin";

/// A running PostgreSQL cluster owned by this test.
pub(crate) struct Cluster {
    dir: tempfile::TempDir,
    pub(crate) port: u16,
}

fn as_postgres(program: &Path) -> Command {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false);
    if root {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

impl Cluster {
    /// `initdb` + `pg_ctl start`; panics with a hint when PostgreSQL is not installed.
    pub(crate) fn start() -> Self {
        let initdb = PathBuf::from(BIN).join("initdb");
        assert!(
            initdb.exists(),
            "{} is missing: PostgreSQL 15 is needed for this test (`bash .ci/run` installs the `postgresql` package)",
            initdb.display()
        );
        let dir = tempfile::Builder::new()
            .prefix("legate-pg")
            .tempdir()
            .unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir(&data).unwrap();
        let chown = Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(dir.path())
            .status();
        if chown.map(|s| !s.success()).unwrap_or(true) {
            // Not root: run as ourselves.
        }
        let ok = as_postgres(&initdb)
            .args(["-D"])
            .arg(&data)
            .args(["-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"])
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap()
            .success();
        assert!(ok, "initdb failed");
        let port = crate::common::free_port();
        let opts = format!(
            "-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={} -c fsync=off -c synchronous_commit=off -c full_page_writes=off",
            dir.path().display()
        );
        let ok = as_postgres(&PathBuf::from(BIN).join("pg_ctl"))
            .arg("-D")
            .arg(&data)
            .args(["-o", &opts, "-w", "-t", "30", "-l"])
            .arg(dir.path().join("log"))
            .arg("start")
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap()
            .success();
        assert!(
            ok,
            "pg_ctl start failed: {}",
            std::fs::read_to_string(dir.path().join("log")).unwrap_or_default()
        );
        Self { dir, port }
    }

    /// A client connected as `postgres`.
    pub(crate) async fn connect(&self) -> Client {
        let (client, conn) = tokio_postgres::connect(
            &format!(
                "host=127.0.0.1 port={} user=postgres dbname=postgres",
                self.port
            ),
            NoTls,
        )
        .await
        .expect("connect to the test cluster");
        tokio::spawn(conn);
        client
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = as_postgres(&PathBuf::from(BIN).join("pg_ctl"))
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["-m", "immediate", "stop"])
            .stdout(std::process::Stdio::null())
            .status();
    }
}

/// Creates `orders` and `products` and loads the universe (values bound, never spliced).
async fn load(db: &Client, orders: &[Resource], products: &[Resource]) {
    db.batch_execute(
        "CREATE TABLE orders (id text PRIMARY KEY, owner_id text NOT NULL, legal_entity_id text, status text);
         CREATE TABLE products (id text PRIMARY KEY, segment_ids text[] NOT NULL);",
    )
    .await
    .unwrap();
    for o in orders {
        let id_of = |k: &str| {
            o.attrs
                .get(k)
                .map(|v| v["id"].as_str().unwrap().to_string())
        };
        let status = o
            .attrs
            .get("status")
            .map(|s| s.as_str().unwrap().to_string());
        db.execute(
            "INSERT INTO orders VALUES ($1, $2, $3, $4)",
            &[
                &o.id,
                &id_of("owner").unwrap(),
                &id_of("legalEntity"),
                &status,
            ],
        )
        .await
        .unwrap();
    }
    for p in products {
        let segs: Vec<String> = p.attrs["segments"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["id"].as_str().unwrap().to_string())
            .collect();
        db.execute("INSERT INTO products VALUES ($1, $2)", &[&p.id, &segs])
            .await
            .unwrap();
    }
}

/// The plan's `params` as typed values for tokio-postgres.
pub(crate) fn params(values: &[Value]) -> Vec<Box<dyn ToSql + Sync + Send>> {
    values
        .iter()
        .map(|v| -> Box<dyn ToSql + Sync + Send> {
            match v {
                Value::String(s) => Box::new(s.clone()),
                Value::Bool(b) => Box::new(*b),
                Value::Number(n) => Box::new(n.as_i64().unwrap()),
                Value::Array(items) => Box::new(
                    items
                        .iter()
                        .map(|i| i.as_str().expect("text[] params").to_string())
                        .collect::<Vec<String>>(),
                ),
                other => panic!("unexpected param {other}"),
            }
        })
        .collect()
}

/// Rows of `table` the plan's fragment selects.
pub(crate) async fn select(db: &Client, table: &str, sql: &Value) -> BTreeSet<String> {
    let query = format!(
        "SELECT id FROM {table} WHERE {}",
        sql["where"].as_str().unwrap()
    );
    let owned = params(sql["params"].as_array().unwrap());
    let refs: Vec<&(dyn ToSql + Sync)> = owned.iter().map(|p| p.as_ref() as _).collect();
    db.query(&query, &refs)
        .await
        .unwrap_or_else(|e| panic!("{query}: {e}"))
        .iter()
        .map(|r| r.get::<_, String>(0))
        .collect()
}

async fn sql_differential(app: &TestApp, db: &Client) {
    for (customer, le) in PRINCIPALS {
        let token = app.token(customer, *le);
        for (action, ty, resources) in cases() {
            let p = super::plan(app, &token, action, ty).await;
            let allow = super::allowed(app, &token, action, ty, &resources).await;
            let table = if ty == "Order" { "orders" } else { "products" };
            let rows = select(db, table, &p["sql"]).await;
            let who = format!("{customer} acting for {le:?}, {action}: {}", p["sql"]);
            if p["errors"].as_array().unwrap().is_empty() {
                assert_eq!(rows, allow, "{who}");
            } else {
                assert!(rows.is_subset(&allow), "{who}: wider than authorize");
            }
        }
    }
}

#[tokio::test]
async fn where_fragment_selects_exactly_the_rows_authorize_allows() {
    let cluster = Cluster::start();
    let db = cluster.connect().await;
    load(
        &db,
        &super::universe::orders(),
        &super::universe::products(),
    )
    .await;
    let shipped = TestApp::spawn_with(super::with_tables).await;
    sql_differential(&shipped, &db).await;
    let extra = super::extra_app().await;
    sql_differential(&extra, &db).await;
}

#[test]
fn the_filtering_lists_example_runs_against_postgres() {
    use crate::common::process::{serve, LegateProcess};
    let cluster = Cluster::start();
    let mut cmd = serve("examples/legate.toml");
    cmd.env("LEGATE_LOG__DECISIONS", "off");
    let server = LegateProcess::start(cmd);
    let out = Command::new("bash")
        .arg("examples/filtering-lists.sh")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("PLAN_URL", server.base())
        .env("PLAN_LEGATE", env!("CARGO_BIN_EXE_legate"))
        .env(
            "PLAN_PG",
            format!(
                "host=127.0.0.1 port={} user=postgres dbname=postgres",
                cluster.port
            ),
        )
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: BTreeSet<&str> = stdout
        .lines()
        .filter_map(|l| l.trim().split(" |").next())
        .filter(|id| id.starts_with("O-") || id.starts_with("P-"))
        .collect();
    assert_eq!(
        rows,
        ["O-1", "O-2", "O-4", "P-1", "P-2", "P-4"].into(),
        "{stdout}"
    );
}
