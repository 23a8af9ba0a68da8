// The spatialsv dataset browser: plain DOM, three.js for the 3D view. Everything comes from
// the local `spatialsv serve` API; nothing is fetched from the internet.
import * as THREE from 'three';
import { OrbitControls } from '/vendor/three/OrbitControls.js';

// What the browser test reads back.
window.spatialsv = { ready: false, points: 0, sqlRows: -1 };

const $ = (id) => document.getElementById(id);
const esc = (s) => String(s ?? '').replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' }[c]));

async function api(path, opts) {
  const r = await fetch(path, opts);
  const body = await r.json().catch(() => ({ error: `${r.status} ${r.statusText}` }));
  if (!r.ok) throw new Error(body.error || `${r.status}`);
  return body;
}

function table(columns, rows, onPick) {
  const head = '<tr>' + columns.map((c) => `<th>${esc(c)}</th>`).join('') + '</tr>';
  const body = rows.map((r, i) => `<tr data-i="${i}"${onPick ? ' class="pick"' : ''}>` +
    columns.map((c) => `<td>${esc(typeof r[c] === 'object' && r[c] !== null ? JSON.stringify(r[c]) : r[c])}</td>`).join('') + '</tr>').join('');
  const t = document.createElement('table');
  t.innerHTML = head + body;
  if (onPick) t.querySelectorAll('tr.pick').forEach((tr) => tr.addEventListener('click', () => onPick(rows[+tr.dataset.i])));
  return t;
}

function show(page) {
  document.querySelectorAll('nav a').forEach((a) => a.classList.toggle('on', a.dataset.page === page));
  for (const id of ['overview', 'scenes', 'quarantine', 'view3dpage', 'runs', 'sql']) $(id).hidden = true;
  $(page === 'view3d' ? 'view3dpage' : page).hidden = false;
  if (page === 'view3d') view3d.resize();
}
document.querySelectorAll('nav a[data-page]').forEach((a) => a.addEventListener('click', () => show(a.dataset.page)));

async function overview() {
  const s = await api('/api/summary');
  $('dsname').textContent = `${s.dataset} (version ${s.version})`;
  const el = $('overview');
  el.innerHTML = '<h2>Versions</h2>';
  el.append(table(['version', 'created_at', 'operation'], s.versions));
  el.insertAdjacentHTML('beforeend', '<h2>Tables (rows)</h2>');
  el.append(table(['name', 'rows'], s.tables));
}

async function scenes() {
  const s = await api('/api/scenes');
  const el = $('scenes');
  el.innerHTML = '<h2>Scenes</h2><p>Click a scene for its frames.</p>';
  el.append(table(s.columns, s.rows, (row) => frames(row.scene_id)));
  el.insertAdjacentHTML('beforeend', '<div id="frames"></div>');
  const sel = $('scene3d');
  sel.innerHTML = s.rows.filter((r) => r.with_depth > 0).map((r) => `<option>${esc(r.scene_id)}</option>`).join('');
  return s.rows;
}

async function frames(scene) {
  const el = $('frames');
  el.innerHTML = `<h3>${esc(scene)}</h3>`;
  const f = await api(`/api/scenes/${encodeURIComponent(scene)}/frames`);
  const labels = new Map(f.labels.map((l) => [l.frame_idx, l]));
  const box = document.createElement('div');
  box.className = 'frames';
  for (const fr of f.frames.slice(0, 48)) {
    const base = `/api/frames/${encodeURIComponent(scene)}/${fr.frame_idx}`;
    const l = labels.get(fr.frame_idx);
    let html = `<b>frame ${fr.frame_idx}</b><img class="rgb" alt="colour" src="${base}/image">`;
    if (fr.has_depth) html += `<img alt="depth" title="true depth" src="${base}/depth.png">`;
    if (l) {
      html += `<div class="row"><img alt="pseudo depth" title="pseudo-label depth" src="${base}/pseudo.png?kind=depth">` +
        `<img alt="confidence" title="confidence" src="${base}/pseudo.png?kind=confidence">` +
        `<img alt="keep" title="kept pixels in colour" src="${base}/pseudo.png?kind=keep"></div>` +
        `<div class="${l.accepted ? 'ok' : 'no'}">${l.accepted ? 'accepted' : 'rejected: ' + esc(l.reject_reason)}</div>` +
        `<div>removed: confidence ${l.px_removed_confidence}, geometric ${l.px_removed_geometric}; kept ${l.px_kept} of ${l.px_total} (teacher ${esc(l.teacher)})</div>`;
    }
    const d = document.createElement('div');
    d.className = 'frame';
    d.innerHTML = html;
    box.append(d);
  }
  el.append(box);
}

async function quarantine() {
  const el = $('quarantine');
  el.innerHTML = '<h2>Quarantine</h2>';
  const q = await api('/api/sql', { method: 'POST', body: 'SELECT * FROM quarantine LIMIT 500' });
  if (q.rows.length === 0) el.insertAdjacentHTML('beforeend', '<p>Nothing quarantined.</p>');
  else el.append(table(q.columns, q.rows));
}

const view3d = (() => {
  let renderer, scene, camera, controls;
  function init() {
    const el = $('view3d');
    renderer = new THREE.WebGLRenderer({ antialias: true, preserveDrawingBuffer: true });
    renderer.setPixelRatio(window.devicePixelRatio || 1);
    el.append(renderer.domElement);
    scene = new THREE.Scene();
    scene.background = new THREE.Color(0xffffff);
    camera = new THREE.PerspectiveCamera(60, 1, 0.01, 1000);
    controls = new OrbitControls(camera, renderer.domElement);
    resize();
    renderer.setAnimationLoop(() => { controls.update(); renderer.render(scene, camera); });
  }
  function resize() {
    if (!renderer) return;
    const el = $('view3d');
    const w = el.clientWidth || 800, h = el.clientHeight || 520;
    renderer.setSize(w, h);
    camera.aspect = w / h;
    camera.updateProjectionMatrix();
  }
  function cloud(data, offset) {
    const g = new THREE.BufferGeometry();
    g.setAttribute('position', new THREE.Float32BufferAttribute(data.points, 3));
    g.setAttribute('color', new THREE.Float32BufferAttribute(data.colors.map((c) => c / 255), 3));
    const pts = new THREE.Points(g, new THREE.PointsMaterial({ size: 0.02, vertexColors: true }));
    pts.position.x += offset;
    return pts;
  }
  function frusta(cams) {
    const group = new THREE.Group();
    for (const c of cams) {
      const m = new THREE.Matrix4().fromArray(c.world_from_camera).transpose();
      const s = 0.15, corners = [[-1, -0.75], [1, -0.75], [1, 0.75], [-1, 0.75]].map(([x, y]) => new THREE.Vector3(x * s, y * s, s));
      const pts = [];
      for (let i = 0; i < 4; i++) pts.push(new THREE.Vector3(0, 0, 0), corners[i], corners[i], corners[(i + 1) % 4]);
      const g = new THREE.BufferGeometry().setFromPoints(pts);
      const lines = new THREE.LineSegments(g, new THREE.LineBasicMaterial({ color: 0xcc2222 }));
      lines.applyMatrix4(m);
      group.add(lines);
    }
    return group;
  }
  async function load(sceneId) {
    if (!renderer) init();
    while (scene.children.length) scene.remove(scene.children[0]);
    const d = await api(`/api/scenes/${encodeURIComponent(sceneId)}/points`);
    scene.add(cloud(d, 0));
    scene.add(frusta(d.cameras));
    let n = d.points.length / 3;
    // Export point clouds (truth and prediction) side by side, when serve has --exports.
    const ex = await api('/api/exports');
    for (const [k, name] of ex.exports.entries()) {
      for (const [j, file] of ['gt.ply', 'pred.ply'].entries()) {
        const p = await api(`/api/exports/${encodeURIComponent(name)}/${file}`);
        scene.add(cloud(p, 8 * (1 + 2 * k + j)));
        n += p.points.length / 3;
      }
    }
    $('export3d').textContent = ex.exports.length ? `beside it, right: ${ex.exports.map((e) => e + ' (truth, prediction)').join(', ')}` : '';
    const box = new THREE.Box3().setFromObject(scene);
    const c = box.getCenter(new THREE.Vector3()), r = box.getSize(new THREE.Vector3()).length() || 1;
    camera.position.set(c.x, c.y - r * 0.2, c.z - r * 0.8);
    camera.up.set(0, -1, 0);
    controls.target.copy(c);
    $('info3d').textContent = `${d.points.length / 3} points, ${d.cameras.length} cameras (red)`;
    window.spatialsv.points = n;
  }
  return { load, resize };
})();

async function runs() {
  const el = $('runs');
  el.innerHTML = '<h2>Training runs</h2>';
  const r = await api('/api/runs');
  if (r.note) el.insertAdjacentHTML('beforeend', `<p>${esc(r.note)}</p>`);
  for (const run of r.runs) {
    el.insertAdjacentHTML('beforeend', `<h3>${esc(run.name)}</h3>`);
    for (const [metric, pts] of Object.entries(run.curves)) el.append(curve(metric, pts));
  }
}

function curve(metric, pts) {
  const c = document.createElement('canvas');
  c.className = 'curve'; c.width = 480; c.height = 220;
  const g = c.getContext('2d');
  const xs = pts.map((p) => p[0]), ys = pts.map((p) => p[1]);
  const [x0, x1, y0, y1] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
  const L = 56, B = 30, W = c.width - L - 10, H = c.height - B - 24;
  const px = (x) => L + (x - x0) / ((x1 - x0) || 1) * W, py = (y) => 24 + H - (y - y0) / ((y1 - y0) || 1) * H;
  g.font = '12px sans-serif'; g.fillStyle = '#222';
  g.fillText(metric, L, 14);
  g.strokeStyle = '#999'; g.strokeRect(L, 24, W, H);
  for (let i = 0; i <= 4; i++) {
    const y = y0 + (y1 - y0) * i / 4, x = x0 + (x1 - x0) * i / 4;
    g.fillText(y.toPrecision(3), 2, py(y) + 4);
    g.fillText(Math.round(x), px(x) - 8, 24 + H + 16);
  }
  g.strokeStyle = '#1f77b4'; g.lineWidth = 2; g.beginPath();
  pts.forEach(([x, y], i) => (i ? g.lineTo(px(x), py(y)) : g.moveTo(px(x), py(y))));
  g.stroke();
  return c;
}

async function runSql() {
  const out = $('sqlout');
  out.innerHTML = '';
  try {
    const r = await api('/api/sql', { method: 'POST', body: $('sqlbox').value });
    out.append(table(r.columns, r.rows));
    out.insertAdjacentHTML('beforeend', `<p>${r.rows.length} rows</p>`);
    window.spatialsv.sqlRows = r.rows.length;
  } catch (e) {
    out.innerHTML = `<div class="error">${esc(e.message)}</div>`;
    window.spatialsv.sqlRows = -2;
  }
}
$('sqlrun').addEventListener('click', runSql);
$('scene3d').addEventListener('change', (e) => view3d.load(e.target.value));

(async () => {
  await overview();
  const rows = await scenes();
  await quarantine();
  await runs();
  // Frames of a pseudo-labelled scene when there is one; the 3D view of a scene with depth.
  const labelled = rows.find((r) => r.pseudo_labelled > 0) || rows[0];
  if (labelled) await frames(labelled.scene_id);
  const withDepth = rows.find((r) => r.with_depth > 0);
  if (withDepth) await view3d.load(withDepth.scene_id);
  window.spatialsv.ready = true;
})().catch((e) => {
  document.querySelector('main').insertAdjacentHTML('afterbegin', `<div class="error">${esc(e.message)}</div>`);
  console.error(e);
});
