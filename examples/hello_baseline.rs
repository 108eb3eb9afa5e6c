//! The baseline of `benches/fast_path.sh`: a hello-world axum server answering the same
//! `POST /v1/authorize` request legate answers (it reads the JSON body and answers a fixed JSON
//! decision), on the same runtime setup, so the ratio of the two is legate's cost over the HTTP floor.
//!
//! `cargo run --release --example hello_baseline -- 127.0.0.1:9999`

use axum::{routing::post, Json, Router};
use serde_json::{json, Value};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9999".into());
    let app = Router::new().route(
        "/v1/authorize",
        post(|Json(_check): Json<Value>| async {
            Json(
                json!({"decision": "allow", "policies": ["hello"], "errors": [],
                        "principal": "C-1", "legal_entity_id": "LE-1"}),
            )
        }),
    );
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    eprintln!("hello baseline listening on {addr}");
    axum::serve(listener, app).await
}
