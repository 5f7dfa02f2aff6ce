// The web page of `managedclip serve`: classify an uploaded image (bars sorted by probability, beside the exact
// 224×224 image the model saw, from POST /preprocess) and search the index when the server has one. Plain DOM
// code, no libraries; every server error is shown as the text of its {"error"} reply.
"use strict";

const $ = (id) => document.getElementById(id);

/** The server's one-line error for a failed reply, or a description of the failure itself. */
async function errorOf(response) {
  try {
    const body = await response.json();
    if (body && typeof body.error === "string") return `${body.error} (HTTP ${response.status})`;
  } catch { /* not JSON */ }
  return `the server answered HTTP ${response.status} ${response.statusText}`;
}

function showError(element, message) {
  element.textContent = message;
  element.hidden = !message;
}

async function refreshStatus() {
  try {
    const response = await fetch("healthz", { cache: "no-store" });
    const health = await response.json();
    if (!health.ready) {
      $("status").textContent = "The model is loading…";
      setTimeout(refreshStatus, 1000);
      return;
    }
    // The folder's name says which model; its full path (a detail of the server's disk) is in the tooltip.
    const folder = (health.model ?? "").split(" (weights ")[0].replace(/[\\/]+$/, "").split(/[\\/]/).pop();
    $("status").textContent = `Model ${folder} · ${health.embeddingSize}-d embeddings · ${health.kernelPath} kernels`;
    $("status").title = health.model ?? "";
    if (health.indexRows !== null && health.indexRows !== undefined) {
      $("search-section").hidden = false;
      $("index-size").textContent = `(${health.indexRows} images)`;
    }
  } catch (e) {
    $("status").textContent = `The server cannot be reached: ${e.message}`;
  }
}

function renderBars(reply) {
  const rows = reply.labels.map((label, i) => ({ label, prob: reply.probs[i] }))
    .sort((a, b) => b.prob - a.prob);
  const list = $("bars");
  list.replaceChildren();
  for (const row of rows) {
    const item = document.createElement("li");
    item.dataset.label = row.label;
    item.dataset.prob = String(row.prob);
    const name = document.createElement("span");
    name.className = "name";
    name.textContent = row.label;
    const track = document.createElement("span");
    track.className = "track";
    track.setAttribute("role", "meter");
    track.setAttribute("aria-valuemin", "0");
    track.setAttribute("aria-valuemax", "1");
    track.setAttribute("aria-valuenow", String(row.prob));
    track.setAttribute("aria-label", row.label);
    const fill = document.createElement("span");
    fill.className = "fill";
    fill.style.width = `${(row.prob * 100).toFixed(2)}%`;
    track.append(fill);
    const value = document.createElement("span");
    value.className = "value";
    value.textContent = `${(row.prob * 100).toFixed(1)} %`;
    item.append(name, track, value);
    list.append(item);
  }
  $("result-name").textContent = `for ${reply.image}`;
}

async function classify(event) {
  event.preventDefault();
  const file = $("image").files[0];
  if (!file) { showError($("classify-error"), "Pick an image first."); return; }
  const button = $("classify");
  button.disabled = true;
  showError($("classify-error"), "");
  document.body.dataset.state = "classifying";
  try {
    const form = new FormData();
    form.append("image", file, file.name);
    form.append("labels", $("labels").value);
    form.append("template", $("template").value);
    const picture = new FormData();
    picture.append("image", file, file.name);
    const [scores, seen] = await Promise.all([
      fetch("classify", { method: "POST", body: form }),
      fetch("preprocess", { method: "POST", body: picture }),
    ]);
    if (!scores.ok) throw new Error(await errorOf(scores));
    if (!seen.ok) throw new Error(await errorOf(seen));
    renderBars(await scores.json());
    const image = $("seen");
    if (image.src.startsWith("blob:")) URL.revokeObjectURL(image.src);
    const loaded = new Promise((resolve) => { image.onload = resolve; image.onerror = resolve; });
    image.src = URL.createObjectURL(await seen.blob());
    await loaded;
    $("result").hidden = false;
    document.body.dataset.state = "classified";
  } catch (e) {
    showError($("classify-error"), `Classify failed: ${e.message}`);
    document.body.dataset.state = "error";
  } finally {
    button.disabled = false;
  }
}

async function search(event) {
  event.preventDefault();
  showError($("search-error"), "");
  const list = $("hits");
  list.replaceChildren();
  try {
    const response = await fetch("search", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ text: $("query").value, k: Number($("k").value) }),
    });
    if (!response.ok) throw new Error(await errorOf(response));
    for (const hit of await response.json()) {
      const item = document.createElement("li");
      const path = document.createElement("span");
      path.className = "path";
      path.textContent = hit.relative_path;
      path.title = hit.path;
      const score = document.createElement("span");
      score.className = "score";
      score.textContent = hit.score.toFixed(4);
      item.append(path, score);
      list.append(item);
    }
  } catch (e) {
    showError($("search-error"), `Search failed: ${e.message}`);
  }
}

function setUpDrop() {
  const zone = $("drop");
  const input = $("image");
  const named = () => { $("file-name").textContent = input.files[0] ? `Selected: ${input.files[0].name}` : ""; };
  input.addEventListener("change", named);
  zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    zone.classList.remove("over");
    if (e.dataTransfer.files.length > 0) {
      input.files = e.dataTransfer.files;
      named();
    }
  });
}

setUpDrop();
$("classify-form").addEventListener("submit", classify);
$("search-form").addEventListener("submit", search);
refreshStatus();
