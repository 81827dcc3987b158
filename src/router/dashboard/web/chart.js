// A line chart on a canvas, drawn whole on each update: a few hundred points
// per series cost well under a millisecond, less than keeping DOM nodes for them.

const PAD = { left: 44, right: 8, top: 8, bottom: 18 };

/**
 * Draws `series` ([{color, values}], values oldest first, one per sample) over
 * `spanSeconds`, the y axis from 0 to the largest value, labelled with `unit`.
 */
export function drawChart(canvas, series, spanSeconds, unit) {
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth || canvas.width;
  const height = canvas.clientHeight || canvas.height;
  if (canvas.width !== Math.round(width * ratio)) canvas.width = Math.round(width * ratio);
  if (canvas.height !== Math.round(height * ratio)) canvas.height = Math.round(height * ratio);
  const g = canvas.getContext("2d");
  g.setTransform(ratio, 0, 0, ratio, 0, 0);
  g.clearRect(0, 0, width, height);
  const top = niceCeiling(Math.max(0, ...series.flatMap((s) => s.values.filter(Number.isFinite))));
  const plotW = width - PAD.left - PAD.right;
  const plotH = height - PAD.top - PAD.bottom;
  axes(g, width, height, top, spanSeconds, unit);
  for (const s of series) {
    const n = s.values.length;
    if (n < 2) continue;
    g.strokeStyle = s.color;
    g.lineWidth = 1.5;
    g.beginPath();
    let drawing = false;
    s.values.forEach((v, i) => {
      if (!Number.isFinite(v)) return void (drawing = false);
      const x = PAD.left + (plotW * i) / (n - 1);
      const y = PAD.top + plotH - (plotH * v) / top;
      if (drawing) g.lineTo(x, y);
      else g.moveTo(x, y);
      drawing = true;
    });
    g.stroke();
  }
}

function axes(g, width, height, top, spanSeconds, unit) {
  g.strokeStyle = "#d5d9de";
  g.fillStyle = "#667";
  g.font = "11px system-ui, sans-serif";
  g.lineWidth = 1;
  for (const f of [0, 0.5, 1]) {
    const y = PAD.top + (height - PAD.top - PAD.bottom) * (1 - f);
    g.beginPath();
    g.moveTo(PAD.left, y);
    g.lineTo(width - PAD.right, y);
    g.stroke();
    g.textAlign = "right";
    g.fillText(short(top * f), PAD.left - 4, y + 4);
  }
  g.textAlign = "left";
  if (spanSeconds >= 1) g.fillText(`-${Math.round(spanSeconds)} s`, PAD.left, height - 4);
  g.textAlign = "right";
  g.fillText(`now (${unit})`, width - PAD.right, height - 4);
}

/** 1, 2 or 5 times a power of ten, at least `v` (and at least 1, so an idle chart has an axis). */
function niceCeiling(v) {
  if (v <= 1) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  return [1, 2, 5, 10].map((m) => m * p).find((c) => c >= v);
}

function short(v) {
  if (v >= 1e6) return `${+(v / 1e6).toFixed(1)}M`;
  if (v >= 1e3) return `${+(v / 1e3).toFixed(1)}k`;
  return String(+v.toFixed(1));
}
