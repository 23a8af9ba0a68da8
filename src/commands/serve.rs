//! `spatialsv serve`: a local, read-only dataset browser in the web page.
//!
//! An axum server on its own tokio runtime answers HTTP; everything that reads the dataset
//! (the DataFusion session of `spatialsv sql`, the frame store, pseudo-labels, point clouds)
//! runs on one worker thread that owns them, reached through a channel, so DataFusion's own
//! runtime never runs inside the server's. The page (`src/web/`) and three.js (vendored from
//! the npm registry, `src/web/vendor/three/`, MIT) are embedded in the binary: nothing is
//! fetched from the internet.

use super::Context;
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};
use spatialsv_schemas::Table;
use spatialsv_sql::{OutputFormat, SqlSession, render};
use spatialsv_store::geometry::{Intrinsics, transform_point};
use spatialsv_store::labels::{PseudoLabelRow, read_pseudo_labels};
use spatialsv_store::{Dataset, FrameStore};

use super::{CliError, CliResult};

/// Browse a dataset in the web page: versions and tables; scenes and their frames (colour,
/// depth and pseudo-label depth colour-mapped, confidence and the keep mask, the verdict and
/// what each filter removed); quarantined rows with their reasons; a 3D view of a scene's
/// point cloud and cameras (and of `export` point clouds with --exports); training runs'
/// loss curves (--runs); a SQL box on the same read-only DataFusion session as `spatialsv
/// sql`. Binds to 127.0.0.1 unless --host says otherwise; read-only. Stop it with Ctrl-C.
///
/// Example:
///   spatialsv serve --dataset ds --runs out/demo/runs --exports out/demo/export
///   spatialsv serve --dataset ds --port 8080
#[derive(Debug, Clone, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// Dataset: a directory, or s3://bucket/prefix on S3-compatible object storage.
    #[arg(long)]
    dataset: PathBuf,
    /// Port (0: any free port; the address is printed).
    #[arg(long, default_value_t = 8765)]
    port: u16,
    /// Address to bind to.
    #[arg(long, default_value = "127.0.0.1")]
    host: IpAddr,
    /// A directory of training runs (each a run directory) whose loss curves to show.
    #[arg(long)]
    runs: Option<PathBuf>,
    /// A directory of `spatialsv export` outputs (sub-directories with pred.ply / gt.ply).
    #[arg(long)]
    exports: Option<PathBuf>,
}

/// A request to the worker that owns the dataset.
enum Ask {
    Summary,
    Sql(String),
    Scenes,
    Frames(String),
    Image(String, i64),
    Depth(String, i64),
    Pseudo(String, i64, String),
    Points(String),
    Runs,
    Exports,
    ExportPoints(String, String),
}

/// The worker's answer: JSON, or bytes with their content type, or an error (status, text).
enum Answer {
    Json(Value),
    Bytes(&'static str, Vec<u8>),
    Error(StatusCode, String),
}

impl IntoResponse for Answer {
    fn into_response(self) -> Response {
        match self {
            Answer::Json(v) => axum::Json(v).into_response(),
            Answer::Bytes(t, b) => ([(header::CONTENT_TYPE, t)], b).into_response(),
            Answer::Error(code, msg) => (code, axum::Json(json!({ "error": msg }))).into_response(),
        }
    }
}

type Job = (Ask, tokio::sync::oneshot::Sender<Answer>);

#[derive(Clone)]
struct App {
    tx: std::sync::mpsc::Sender<Job>,
}

impl App {
    async fn ask(&self, a: Ask) -> Answer {
        let (tx, rx) = tokio::sync::oneshot::channel();
        if self.tx.send((a, tx)).is_err() {
            return Answer::Error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the worker stopped".into(),
            );
        }
        rx.await.unwrap_or_else(|_| {
            Answer::Error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the worker stopped".into(),
            )
        })
    }
}

const INDEX: &str = include_str!("../web/index.html");
const APP_JS: &str = include_str!("../web/app.js");
const THREE: &str = include_str!("../web/vendor/three/three.module.js");
const THREE_CORE: &str = include_str!("../web/vendor/three/three.core.js");
const ORBIT: &str = include_str!("../web/vendor/three/OrbitControls.js");
const THREE_LICENSE: &str = include_str!("../web/vendor/three/LICENSE");

fn asset(kind: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, kind)], body).into_response()
}

pub fn run(args: Args, ctx: &Context) -> CliResult {
    let ds = ctx.open(&args.dataset)?;
    // Open the session now so a broken dataset is one line before anything listens.
    let session = SqlSession::open(&ds, None)?;
    let (tx, rx) = std::sync::mpsc::channel::<Job>();
    let worker = Worker {
        ds,
        session,
        store: None,
        labels: None,
        runs: args.runs.clone(),
        exports: args.exports.clone(),
    };
    std::thread::spawn(move || worker.serve(rx));
    let app = App { tx };
    let router = Router::new()
        .route(
            "/",
            get(|| async { asset("text/html; charset=utf-8", INDEX) }),
        )
        .route(
            "/app.js",
            get(|| async { asset("text/javascript", APP_JS) }),
        )
        .route(
            "/vendor/three/three.module.js",
            get(|| async { asset("text/javascript", THREE) }),
        )
        .route(
            "/vendor/three/three.core.js",
            get(|| async { asset("text/javascript", THREE_CORE) }),
        )
        .route(
            "/vendor/three/OrbitControls.js",
            get(|| async { asset("text/javascript", ORBIT) }),
        )
        .route(
            "/vendor/three/LICENSE",
            get(|| async { asset("text/plain", THREE_LICENSE) }),
        )
        .route(
            "/api/summary",
            get(|State(a): State<App>| async move { a.ask(Ask::Summary).await }),
        )
        .route(
            "/api/scenes",
            get(|State(a): State<App>| async move { a.ask(Ask::Scenes).await }),
        )
        .route(
            "/api/runs",
            get(|State(a): State<App>| async move { a.ask(Ask::Runs).await }),
        )
        .route(
            "/api/exports",
            get(|State(a): State<App>| async move { a.ask(Ask::Exports).await }),
        )
        .route(
            "/api/exports/{name}/{file}",
            get(
                |State(a): State<App>, UrlPath((n, f)): UrlPath<(String, String)>| async move {
                    a.ask(Ask::ExportPoints(n, f)).await
                },
            ),
        )
        .route(
            "/api/scenes/{scene}/frames",
            get(
                |State(a): State<App>, UrlPath(s): UrlPath<String>| async move {
                    a.ask(Ask::Frames(s)).await
                },
            ),
        )
        .route(
            "/api/scenes/{scene}/points",
            get(
                |State(a): State<App>, UrlPath(s): UrlPath<String>| async move {
                    a.ask(Ask::Points(s)).await
                },
            ),
        )
        .route(
            "/api/frames/{scene}/{idx}/image",
            get(
                |State(a): State<App>, UrlPath((s, i)): UrlPath<(String, i64)>| async move {
                    a.ask(Ask::Image(s, i)).await
                },
            ),
        )
        .route(
            "/api/frames/{scene}/{idx}/depth.png",
            get(
                |State(a): State<App>, UrlPath((s, i)): UrlPath<(String, i64)>| async move {
                    a.ask(Ask::Depth(s, i)).await
                },
            ),
        )
        .route(
            "/api/frames/{scene}/{idx}/pseudo.png",
            get(
                |State(a): State<App>,
                 UrlPath((s, i)): UrlPath<(String, i64)>,
                 Query(q): Query<PseudoQuery>| async move {
                    a.ask(Ask::Pseudo(s, i, q.kind.unwrap_or_else(|| "depth".into())))
                        .await
                },
            ),
        )
        .route(
            "/api/sql",
            post(|State(a): State<App>, body: String| async move { a.ask(Ask::Sql(body)).await }),
        )
        .with_state(app);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| CliError::Other(anyhow::anyhow!("starting the server runtime: {e}")))?;
    rt.block_on(async move {
        let addr = SocketAddr::new(args.host, args.port);
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| CliError::User(format!("cannot listen on {addr}: {e}")))?;
        let bound = listener
            .local_addr()
            .map_err(|e| CliError::Other(anyhow::anyhow!("{e}")))?;
        out!(
            "serving {} at http://{bound}/ (read-only; Ctrl-C stops)",
            args.dataset.display()
        );
        axum::serve(listener, router)
            .await
            .map_err(|e| CliError::Other(anyhow::anyhow!("server: {e}")))
    })
}

#[derive(Debug, Deserialize)]
struct PseudoQuery {
    kind: Option<String>,
}

/// Owns the dataset side: the SQL session, the frame store and the pseudo-labels.
struct Worker {
    ds: Dataset,
    session: SqlSession,
    store: Option<Arc<FrameStore>>,
    /// Pseudo-labels of the newest labelling, by (scene, frame).
    labels: Option<BTreeMap<(String, i64), PseudoLabelRow>>,
    runs: Option<PathBuf>,
    exports: Option<PathBuf>,
}

fn bad(msg: impl Into<String>) -> Answer {
    Answer::Error(StatusCode::BAD_REQUEST, msg.into())
}

fn not_found(msg: impl Into<String>) -> Answer {
    Answer::Error(StatusCode::NOT_FOUND, msg.into())
}

/// A SQL string literal.
fn lit(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

impl Worker {
    fn serve(mut self, rx: std::sync::mpsc::Receiver<Job>) {
        for (ask, reply) in rx {
            let answer = self.answer(ask).unwrap_or_else(|e| {
                let (code, msg) = e.describe();
                let status = if code == 2 {
                    StatusCode::BAD_REQUEST
                } else {
                    StatusCode::INTERNAL_SERVER_ERROR
                };
                Answer::Error(status, msg)
            });
            let _ = reply.send(answer);
        }
    }

    fn sql_json(&self, sql: &str) -> Result<Value, String> {
        let r = self.session.query(sql).map_err(|e| e.to_string())?;
        let text = render(&r, OutputFormat::Json).map_err(|e| e.to_string())?;
        let rows: Value = serde_json::from_str(&text).unwrap_or_else(|_| json!([]));
        let columns: Vec<String> = r.schema.fields().iter().map(|f| f.name().clone()).collect();
        Ok(json!({ "columns": columns, "rows": rows }))
    }

    fn store(&mut self) -> Result<Arc<FrameStore>, CliError> {
        if let Some(s) = &self.store {
            return Ok(s.clone());
        }
        let m = self.ds.manifest(self.session.version())?;
        let s = Arc::new(FrameStore::new(self.ds.clone(), &m, 8));
        self.store = Some(s.clone());
        Ok(s)
    }

    /// The store and frame `idx` of `scene`, or the answer that it does not exist.
    fn frame(
        &mut self,
        scene: &str,
        idx: i64,
    ) -> Result<Result<(Arc<FrameStore>, spatialsv_store::FrameRef), Answer>, CliError> {
        let store = self.store()?;
        let found = store.frame_index()?.get(&(scene.to_string(), idx)).copied();
        Ok(match found {
            Some((f, _)) => Ok((store, f)),
            None => Err(not_found(format!("no frame {idx} in scene {scene}"))),
        })
    }

    fn labels(&mut self) -> Result<&BTreeMap<(String, i64), PseudoLabelRow>, CliError> {
        if self.labels.is_none() {
            let m = self.ds.manifest(self.session.version())?;
            let mut rows = Vec::new();
            for b in self.ds.read_table(&m, Table::PseudoLabels, None)? {
                rows.extend(read_pseudo_labels(&b)?);
            }
            // The newest labelling of each frame.
            rows.sort_by_key(|r| r.labeled_at);
            let map = rows
                .into_iter()
                .map(|r| ((r.scene_id.clone(), r.frame_idx), r))
                .collect();
            self.labels = Some(map);
        }
        Ok(self.labels.get_or_insert_with(BTreeMap::new))
    }

    fn answer(&mut self, ask: Ask) -> Result<Answer, CliError> {
        Ok(match ask {
            Ask::Summary => {
                let history = self.ds.history()?;
                let versions: Vec<Value> = history
                    .iter()
                    .rev()
                    .map(|m| json!({"version": m.version, "created_at": m.created_at, "operation": m.operation}))
                    .collect();
                let m = self.ds.manifest(self.session.version())?;
                let tables: Vec<Value> = Table::ALL
                    .iter()
                    .map(|t| {
                        json!({"name": t.name(), "rows": m.tables.get(t.name()).map_or(0, |f| f.rows())})
                    })
                    .collect();
                Answer::Json(json!({
                    "dataset": self.ds.location(),
                    "version": self.session.version(),
                    "versions": versions,
                    "tables": tables,
                }))
            }
            Ask::Sql(q) => match self.sql_json(q.trim()) {
                Ok(v) => Answer::Json(v),
                Err(e) => bad(e),
            },
            Ask::Scenes => match self.sql_json(
                "SELECT f.scene_id, f.split, f.source, f.frames, f.with_depth, \
                 coalesce(p.labelled, 0) AS pseudo_labelled \
                 FROM (SELECT scene_id, split, source, count(*) AS frames, count(depth) AS with_depth \
                       FROM frames GROUP BY scene_id, split, source) f \
                 LEFT JOIN (SELECT scene_id, count(DISTINCT frame_idx) AS labelled FROM pseudo_labels \
                            GROUP BY scene_id) p ON f.scene_id = p.scene_id \
                 ORDER BY f.scene_id",
            ) {
                Ok(v) => Answer::Json(v),
                Err(e) => bad(e),
            },
            Ask::Frames(scene) => {
                let frames = self.sql_json(&format!(
                    "SELECT frame_idx, depth IS NOT NULL AS has_depth, world_from_camera IS NOT NULL AS has_pose \
                     FROM frames WHERE scene_id = {} ORDER BY frame_idx",
                    lit(&scene)
                ));
                let frames = match frames {
                    Ok(v) => v,
                    Err(e) => return Ok(bad(e)),
                };
                let labels: Vec<Value> = self
                    .labels()?
                    .range((scene.clone(), i64::MIN)..=(scene.clone(), i64::MAX))
                    .map(|(_, r)| {
                        let total = r.width as i64 * r.height as i64;
                        let kept = r.keep.iter().filter(|k| **k).count() as i64;
                        json!({
                            "frame_idx": r.frame_idx,
                            "accepted": r.accepted,
                            "reject_reason": r.reject_reason,
                            "px_total": total,
                            "px_removed_confidence": r.px_removed_confidence,
                            "px_removed_geometric": r.px_removed_geometric,
                            "px_kept": kept,
                            "teacher": spatialsv_store::hash::short(&r.teacher_hash),
                        })
                    })
                    .collect();
                if frames["rows"].as_array().is_none_or(|r| r.is_empty()) {
                    return Ok(not_found(format!("no scene {scene}")));
                }
                Answer::Json(json!({ "frames": frames["rows"], "labels": labels }))
            }
            Ask::Image(scene, idx) => {
                let (store, f) = match self.frame(&scene, idx)? {
                    Ok(found) => found,
                    Err(missing) => return Ok(missing),
                };
                let bytes = store.with_image(&f, <[u8]>::to_vec)?;
                let kind = if bytes.starts_with(b"\x89PNG") {
                    "image/png"
                } else {
                    "image/jpeg"
                };
                Answer::Bytes(kind, bytes)
            }
            Ask::Depth(scene, idx) => {
                let (store, f) = match self.frame(&scene, idx)? {
                    Ok(found) => found,
                    Err(missing) => return Ok(missing),
                };
                let raw = store.load(&f)?;
                let Some((png, scale, _)) = raw.depth else {
                    return Ok(not_found(format!("frame {idx} of {scene} has no depth")));
                };
                let d = spatialsv_store::frames::decode_stored_depth(&png, format!("{scene} frame {idx}"))?;
                let metres: Vec<f32> = d.values.iter().map(|v| (f64::from(*v) * scale) as f32).collect();
                Answer::Bytes("image/png", colourise(&metres, d.width, d.height, None)?)
            }
            Ask::Pseudo(scene, idx, kind) => {
                let Some(r) = self.labels()?.get(&(scene.clone(), idx)).cloned() else {
                    return Ok(not_found(format!("frame {idx} of {scene} has no pseudo-label")));
                };
                let (w, h) = (r.width as u32, r.height as u32);
                let png = match kind.as_str() {
                    "depth" => colourise(&r.depth, w, h, None)?,
                    "confidence" => colourise(&r.confidence, w, h, None)?,
                    "keep" => colourise(&r.depth, w, h, Some(&r.keep))?,
                    other => return Ok(bad(format!("kind '{other}': depth, confidence or keep"))),
                };
                Answer::Bytes("image/png", png)
            }
            Ask::Points(scene) => self.points(&scene)?,
            Ask::Runs => Answer::Json(runs(self.runs.as_deref())),
            Ask::Exports => Answer::Json(exports(self.exports.as_deref())),
            Ask::ExportPoints(name, file) => {
                let Some(dir) = &self.exports else {
                    return Ok(not_found("no --exports directory"));
                };
                if !matches!(file.as_str(), "pred.ply" | "gt.ply")
                    || name.contains('/')
                    || name.contains("..")
                {
                    return Ok(bad("file: pred.ply or gt.ply of an export"));
                }
                match read_ply(&dir.join(&name).join(&file)) {
                    Ok(p) => Answer::Json(p),
                    Err(e) => not_found(e),
                }
            }
        })
    }

    /// A scene's point cloud from its true depth and poses (every few frames, subsampled to
    /// at most 30,000 points, coloured by the images) and its cameras.
    fn points(&mut self, scene: &str) -> Result<Answer, CliError> {
        let store = self.store()?;
        let index = store.frame_index()?;
        let frames: Vec<_> = index
            .range((scene.to_string(), i64::MIN)..=(scene.to_string(), i64::MAX))
            .map(|(_, (f, _))| *f)
            .collect();
        if frames.is_empty() {
            return Ok(not_found(format!("no scene {scene}")));
        }
        let (mut xyz, mut rgb, mut cams) = (Vec::new(), Vec::new(), Vec::new());
        let step = (frames.len() / 8).max(1);
        for f in frames.iter().step_by(step) {
            let raw = store.load(f)?;
            let Some(pose) = raw.pose else { continue };
            cams.push(
                json!({"frame_idx": f.frame_idx, "world_from_camera": pose.to_vec(), "k": raw.k}),
            );
            let Some((png, scale, dk)) = &raw.depth else {
                continue;
            };
            let d = spatialsv_store::frames::decode_stored_depth(
                png,
                format!("frame {}", f.frame_idx),
            )?;
            let img = image::load_from_memory(&raw.image)
                .map_err(|e| CliError::User(format!("frame {}: {e}", f.frame_idx)))?
                .to_rgb8();
            let k = Intrinsics::from_k(*dk);
            let stride = ((d.width * d.height) as usize / 4000).max(1);
            for (p, v) in d.values.iter().enumerate().step_by(stride) {
                if *v == 0 {
                    continue;
                }
                let (u, vv) = ((p as u32 % d.width) as f64, (p as u32 / d.width) as f64);
                let z = f64::from(*v) * scale;
                let w = transform_point(&pose, k.unproject(u + 0.5, vv + 0.5, z));
                let (iu, iv) = (
                    ((u + 0.5) * f64::from(img.width()) / f64::from(d.width)) as u32,
                    ((vv + 0.5) * f64::from(img.height()) / f64::from(d.height)) as u32,
                );
                let c = img
                    .get_pixel(iu.min(img.width() - 1), iv.min(img.height() - 1))
                    .0;
                xyz.extend(w.map(|x| (x * 1000.0).round() / 1000.0));
                rgb.extend(c);
            }
        }
        if xyz.len() > 90_000 {
            let keep = xyz.len() / 3 / 30_000 + 1;
            xyz = xyz.chunks(3).step_by(keep).flatten().copied().collect();
            rgb = rgb.chunks(3).step_by(keep).flatten().copied().collect();
        }
        Ok(Answer::Json(
            json!({"scene": scene, "points": xyz, "colors": rgb, "cameras": cams}),
        ))
    }
}

/// Turbo-like colour map of `values` (0 or non-finite = none, black), scaled between the
/// 2nd and 98th percentiles; with `keep`, pixels not kept are shown dimmed in grey.
fn colourise(values: &[f32], w: u32, h: u32, keep: Option<&[bool]>) -> Result<Vec<u8>, CliError> {
    let mut valid: Vec<f32> = values
        .iter()
        .copied()
        .filter(|v| v.is_finite() && *v > 0.0)
        .collect();
    valid.sort_by(f32::total_cmp);
    let (lo, hi) = if valid.is_empty() {
        (0.0, 1.0)
    } else {
        (
            valid[valid.len() / 50],
            valid[(valid.len() * 49) / 50].max(valid[valid.len() / 50] + 1e-6),
        )
    };
    let mut img = image::RgbImage::new(w, h);
    for (p, px) in img.pixels_mut().enumerate() {
        let v = values.get(p).copied().unwrap_or(0.0);
        if !(v.is_finite() && v > 0.0) {
            continue;
        }
        let t = ((v - lo) / (hi - lo)).clamp(0.0, 1.0);
        // A compact approximation of Google's Turbo.
        let r = (34.61
            + t * (1172.33 - t * (10793.56 - t * (33300.12 - t * (38394.49 - t * 14825.05)))))
            .clamp(0.0, 255.0);
        let g = (23.31 + t * (557.33 + t * (1225.33 - t * (3574.96 - t * (1073.77 + t * 707.56)))))
            .clamp(0.0, 255.0);
        let b = (27.2
            + t * (3211.1 - t * (15327.97 - t * (27814.0 - t * (22569.18 - t * 6838.66)))))
            .clamp(0.0, 255.0);
        let mut c = [r as u8, g as u8, b as u8];
        if keep.is_some_and(|k| !k.get(p).copied().unwrap_or(false)) {
            let grey = ((u16::from(c[0]) + u16::from(c[1]) + u16::from(c[2])) / 9) as u8;
            c = [grey, grey, grey];
        }
        *px = image::Rgb(c);
    }
    let mut bytes = Vec::new();
    image::DynamicImage::ImageRgb8(img)
        .write_to(
            &mut std::io::Cursor::new(&mut bytes),
            image::ImageFormat::Png,
        )
        .map_err(|e| CliError::Other(anyhow::anyhow!("{e}")))?;
    Ok(bytes)
}

/// Loss curves of every run under `dir` (smoothed, at most 400 points each).
fn runs(dir: Option<&Path>) -> Value {
    let Some(dir) = dir else {
        return json!({"runs": [], "note": "start serve with --runs DIR to see training runs"});
    };
    let mut names: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.path())
                .filter(|p| p.is_dir())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    let runs: Vec<Value> = names
        .iter()
        .filter_map(|run| {
            let curves: BTreeMap<&str, Vec<[f64; 2]>> = ["loss/total", "loss/depth", "loss/text"]
                .into_iter()
                .map(|m| {
                    let c = spatialsv_lab::report::plot::smooth(&spatialsv_lab::report::plot::curve(run, m), 10);
                    let step = (c.len() / 400).max(1);
                    (m, c.iter().step_by(step).map(|(x, y)| [*x, *y]).collect::<Vec<_>>())
                })
                .filter(|(_, c)| !c.is_empty())
                .collect();
            (!curves.is_empty()).then(|| {
                json!({"name": run.file_name().map(|n| n.to_string_lossy().to_string()), "curves": curves})
            })
        })
        .collect();
    json!({ "runs": runs })
}

/// The `export` outputs under `dir` that hold point clouds.
fn exports(dir: Option<&Path>) -> Value {
    let Some(dir) = dir else {
        return json!({"exports": [], "note": "start serve with --exports DIR to compare export point clouds"});
    };
    let mut found: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .filter(|e| e.path().join("pred.ply").exists())
                .map(|e| e.file_name().to_string_lossy().to_string())
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    json!({ "exports": found })
}

/// Reads a binary little-endian PLY of `float x y z, uchar red green blue` vertices (what
/// `spatialsv export` writes), subsampled to at most 30,000 points.
fn read_ply(path: &Path) -> Result<Value, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let end = bytes
        .windows(11)
        .position(|w| w == b"end_header\n")
        .ok_or_else(|| format!("{}: no PLY header", path.display()))?;
    let header = String::from_utf8_lossy(&bytes[..end]);
    if !header.contains("binary_little_endian") {
        return Err(format!(
            "{}: only binary little-endian PLY is read",
            path.display()
        ));
    }
    let n: usize = header
        .lines()
        .find_map(|l| l.strip_prefix("element vertex "))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| format!("{}: no vertex count", path.display()))?;
    let body = &bytes[end + 11..];
    if body.len() < n * 15 {
        return Err(format!("{}: truncated", path.display()));
    }
    let step = (n / 30_000).max(1);
    let (mut xyz, mut rgb) = (Vec::new(), Vec::new());
    for i in (0..n).step_by(step) {
        let v = &body[i * 15..i * 15 + 15];
        for k in 0..3 {
            let f = f32::from_le_bytes([v[4 * k], v[4 * k + 1], v[4 * k + 2], v[4 * k + 3]]);
            xyz.push((f64::from(f) * 1000.0).round() / 1000.0);
        }
        rgb.extend_from_slice(&v[12..15]);
    }
    Ok(json!({"points": xyz, "colors": rgb, "cameras": []}))
}
