// Band-spec regions (DESIGN.md §2, all in cycles/pixel): numeric fields, defaults, drawing, drags.
const R_DRAW = 0.75; // beyond the corner radius √2/2: "up to the edge" when drawing

// Each field: [label, key, index (for box ranges) or null, axis for cycles/image: y | x | r | deg].
export const FIELDS = {
  notch: [["fy", "fy", null, "y"], ["fx", "fx", null, "x"], ["radius", "radius", null, "r"]],
  annulus: [["low", "low", null, "r"], ["high", "high", null, "r"]],
  wedge: [
    ["angle (°)", "angle_deg", null, "deg"],
    ["tolerance (°)", "tolerance_deg", null, "deg"],
    ["low", "low", null, "r"],
    ["high", "high", null, "r"],
  ],
  box: [
    ["fy from", "fy", 0, "y"],
    ["fy to", "fy", 1, "y"],
    ["fx from", "fx", 0, "x"],
    ["fx to", "fx", 1, "x"],
  ],
};

export function getField(region, key, index) {
  return index === null ? region[key] : region[key][index];
}

export function setField(region, key, index, value) {
  if (index === null) region[key] = value;
  else region[key][index] = value;
}

export function defaultRegion(kind) {
  switch (kind) {
    case "notch": return { kind, fy: 0.125, fx: 0.125, radius: 0.02 };
    case "annulus": return { kind, low: 0.15, high: 0.3 };
    case "wedge": return { kind, angle_deg: 0, tolerance_deg: 3, low: 0.05, high: 0.5 };
    case "box": return { kind, fy: [0.2, 0.3], fx: [0.2, 0.3] };
    default: throw new Error(`unknown region kind ${kind}`);
  }
}

const round = (v, digits = 4) => Number(v.toFixed(digits));

// Line angle difference in degrees, modulo 180 (a wedge covers a line through DC).
function lineDelta(a, b) {
  return Math.abs((((a - b + 90) % 180) + 180) % 180 - 90);
}

// A region from a drag between two points {fy, fx}: null if the drag is too short.
export function regionFromDrag(mode, a, b, minStep) {
  const ra = Math.hypot(a.fy, a.fx);
  const rb = Math.hypot(b.fy, b.fx);
  const low = Math.min(ra, rb);
  const high = Math.max(ra, rb);
  if (high - low < minStep) return null;
  if (mode === "annulus") return { kind: "annulus", low: round(low), high: round(high) };
  if (mode === "wedge") {
    const far = rb >= ra ? b : a;
    const near = rb >= ra ? a : b;
    const angle = (Math.atan2(far.fy, far.fx) * 180) / Math.PI;
    const spread = Math.hypot(near.fy, near.fx) > minStep
      ? lineDelta(angle, (Math.atan2(near.fy, near.fx) * 180) / Math.PI) : 0;
    return {
      kind: "wedge",
      angle_deg: round(angle, 1),
      tolerance_deg: round(Math.min(90, Math.max(3, spread)), 1),
      low: round(low),
      high: round(high),
    };
  }
  return null;
}

function ring(ctx, cx, cy, radius) {
  ctx.moveTo(cx + radius, cy);
  ctx.arc(cx, cy, radius, 0, 2 * Math.PI);
}

function sector(ctx, cx, cy, low, high, from, to) {
  ctx.moveTo(cx + low * Math.cos(from), cy + low * Math.sin(from));
  ctx.arc(cx, cy, high, from, to);
  ctx.arc(cx, cy, low, to, from, true);
  ctx.closePath();
}

// Trace a region's outline on ctx (fy grows downwards on the canvas, like an fftshifted array).
function trace(ctx, geom, region) {
  const dc = geom.toCanvas(0, 0);
  const s = geom.scale;
  if (region.kind === "annulus") {
    ring(ctx, dc.x, dc.y, Math.min(region.high, R_DRAW) * s);
    ring(ctx, dc.x, dc.y, region.low * s);
  } else if (region.kind === "notch") {
    for (const sign of [1, -1]) {
      const c = geom.toCanvas(sign * region.fy, sign * region.fx);
      ring(ctx, c.x, c.y, region.radius * s);
    }
  } else if (region.kind === "wedge") {
    const theta = (region.angle_deg * Math.PI) / 180;
    const tol = (region.tolerance_deg * Math.PI) / 180;
    for (const offset of [0, Math.PI]) {
      sector(ctx, dc.x, dc.y, region.low * s, Math.min(region.high, R_DRAW) * s,
        theta + offset - tol, theta + offset + tol);
    }
  } else if (region.kind === "box") {
    for (const sign of [1, -1]) {
      const a = geom.toCanvas(sign * region.fy[0], sign * region.fx[0]);
      const b = geom.toCanvas(sign * region.fy[1], sign * region.fx[1]);
      ctx.rect(Math.min(a.x, b.x), Math.min(a.y, b.y), Math.abs(b.x - a.x), Math.abs(b.y - a.y));
    }
  }
}

function labelPoint(geom, region) {
  if (region.kind === "notch") return geom.toCanvas(region.fy, region.fx);
  if (region.kind === "box") return geom.toCanvas(region.fy[1], region.fx[1]);
  const r = region.kind === "annulus" ? region.high : Math.min(region.high, 0.45);
  const theta = region.kind === "wedge" ? (region.angle_deg * Math.PI) / 180 : -Math.PI / 4;
  return geom.toCanvas(r * Math.sin(theta), r * Math.cos(theta));
}

// Draw every region (numbered like the list), the selected one highlighted, and a drag preview.
export function drawRegions(ctx, geom, regions, selected = -1, preview = null) {
  const all = preview ? [...regions, preview] : regions;
  all.forEach((region, i) => {
    const isPreview = preview !== null && i === regions.length;
    const color = i === selected ? "77, 208, 255" : isPreview ? "255, 255, 255" : "255, 170, 40";
    ctx.beginPath();
    trace(ctx, geom, region);
    ctx.fillStyle = `rgba(${color}, 0.22)`;
    ctx.fill(region.kind === "annulus" ? "evenodd" : "nonzero");
    ctx.lineWidth = i === selected ? 3 : 2;
    ctx.strokeStyle = `rgb(${color})`;
    ctx.stroke();
    if (!isPreview) {
      const p = labelPoint(geom, region);
      ctx.font = "bold 14px system-ui, sans-serif";
      ctx.lineWidth = 3;
      ctx.strokeStyle = "black";
      ctx.strokeText(String(i + 1), p.x + 4, p.y - 4);
      ctx.fillStyle = `rgb(${color})`;
      ctx.fillText(String(i + 1), p.x + 4, p.y - 4);
    }
  });
}
