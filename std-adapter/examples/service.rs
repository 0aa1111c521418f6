//! A service that works only while its node is master (std-adapter/examples/service.rs:
//! `cargo run -p tenure-tokio --example service -- node1.toml`).
use tenure_tokio::{Leadership, NodeConfig, NotMaster};

async fn do_leader_work(term: Leadership) {
    // Every write carries `term.token()`; storage refuses tokens older than the newest
    // it saw, so a deposed master's late write is refused.
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(100));
    loop {
        tokio::select! {
            () = term.cancelled() => break, // a grace before the term ends, or a release
            _ = tick.tick() => tracing::info!(token = term.token(), "leader work"),
        }
    }
    // Told to stop: finish or roll back what is in flight within `term.grace()`.
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt().with_env_filter("info").init();
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "node1.toml".into());
    let node = tenure_tokio::start(NodeConfig::load(path.as_ref())?).await?;
    let leader = tokio::spawn({
        let node = node.clone();
        async move {
            loop {
                match node.run_while_master(do_leader_work).await {
                    Ok(()) => tracing::info!("leader work stopped when told"),
                    Err(NotMaster::TermEnded(token)) => tracing::info!(token, "term ended"),
                    // Returned at once, every time, once the node stopped: end the loop.
                    Err(NotMaster::Stopped) => break,
                }
            }
        }
    });
    tokio::signal::ctrl_c().await?;
    node.shutdown().await?; // tells the work to stop, then releases the role if held
    leader.await?;
    Ok(())
}
