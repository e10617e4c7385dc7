// The band editor: the spectrum canvas (click a peak, drag an annulus or a wedge) and the list of
// regions with numeric fields in cycles/pixel, each shown in cycles/image too (DESIGN.md §2).
import { FIELDS, defaultRegion, drawRegions, getField, regionFromDrag, setField } from "./bands.js";
import { SpectrumGeometry, snapToPeak, spectrumImage } from "./spectrum.js";
import { el, fmt } from "./ui.js";

const gray = new WeakMap(); // spectrum -> its gray canvas

// Paint a spectrum (or a placeholder) and regions on a display canvas; returns the geometry.
export function paint(canvas, spectrum, regions, selected = -1, preview = null) {
  const ctx = canvas.getContext("2d");
  const geom = new SpectrumGeometry(canvas.width, spectrum ? spectrum.th : 128, spectrum ? spectrum.tw : 128);
  ctx.fillStyle = "#111";
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  if (spectrum) {
    if (!gray.has(spectrum)) gray.set(spectrum, spectrumImage(spectrum));
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(gray.get(spectrum), 0, 0, canvas.width, canvas.height);
  } else {
    ctx.fillStyle = "#ddd";
    ctx.font = "16px system-ui, sans-serif";
    ctx.fillText("No image yet: choose one, or try the example", 20, 30);
  }
  drawRegions(ctx, geom, regions, selected, preview);
  return geom;
}

export class BandEditor {
  constructor({ canvas, list, cursor, json, softness, modes, onChange }) {
    Object.assign(this, { canvas, list, cursor, json, softness, modes, onChange });
    this.regions = [];
    this.notes = [];
    this.selected = -1;
    this.spectrum = null;
    this.size = { height: 0, width: 0 };
    this.drag = null;
    canvas.addEventListener("pointerdown", (e) => this.pointerDown(e));
    canvas.addEventListener("pointermove", (e) => this.pointerMove(e));
    canvas.addEventListener("pointerup", (e) => this.pointerUp(e));
    canvas.addEventListener("pointerleave", () => { this.cursor.textContent = ""; });
    softness.addEventListener("input", () => this.changed());
    this.changed();
  }

  setImage(spectrum, height, width) {
    this.spectrum = spectrum;
    this.size = { height, width };
    this.regions = [];
    this.notes = [];
    this.selected = -1;
    this.renderList();
    this.changed();
  }

  add(region, note = "") {
    this.regions.push(region);
    this.notes.push(note);
    this.selected = this.regions.length - 1;
    this.renderList();
    this.changed();
  }

  addDefault(kind) {
    this.add(defaultRegion(kind));
    this.list.lastElementChild.querySelector("input").focus();
  }

  remove(index) {
    this.regions.splice(index, 1);
    this.notes.splice(index, 1);
    this.selected = -1;
    this.renderList();
    this.changed();
  }

  spec() {
    const softness = Number.parseFloat(this.softness.value);
    return {
      regions: structuredClone(this.regions),
      units: "cycles/pixel",
      softness: Number.isFinite(softness) && softness > 0 ? softness : 0,
    };
  }

  changed() {
    this.json.textContent = JSON.stringify(this.spec(), null, 1);
    this.draw();
    if (this.onChange) this.onChange(this);
  }

  draw(preview = null) {
    this.geom = paint(this.canvas, this.spectrum, this.regions, this.selected, preview);
  }

  // ---- pointer: click a peak (notch pair), drag (annulus / wedge) ----
  mode() {
    return this.modes.querySelector("input:checked").value;
  }

  freqAt(event) {
    const rect = this.canvas.getBoundingClientRect();
    const x = ((event.clientX - rect.left) * this.canvas.width) / rect.width;
    const y = ((event.clientY - rect.top) * this.canvas.height) / rect.height;
    return { ...this.geom.fromCanvas(x, y), x, y };
  }

  binStep() {
    return 1 / (this.spectrum ? Math.min(this.spectrum.th, this.spectrum.tw) : 128);
  }

  pointerDown(event) {
    this.drag = this.freqAt(event);
    this.canvas.setPointerCapture(event.pointerId);
  }

  pointerMove(event) {
    const p = this.freqAt(event);
    const { height, width } = this.size;
    const perImage = (v, n) => (n ? ` (${fmt(v * n, 1)} cycles/image)` : "");
    this.cursor.textContent = `fy ${fmt(p.fy)}${perImage(p.fy, height)}, fx ${fmt(p.fx)}`
      + `${perImage(p.fx, width)}, r ${fmt(Math.hypot(p.fy, p.fx))} cycles/pixel`;
    if (this.drag && this.mode() !== "notch") {
      this.draw(regionFromDrag(this.mode(), this.drag, p, this.binStep()));
    }
  }

  pointerUp(event) {
    if (!this.drag) return;
    const start = this.drag;
    this.drag = null;
    const end = this.freqAt(event);
    const moved = Math.hypot(end.x - start.x, end.y - start.y);
    if (this.mode() === "notch") {
      if (moved > 8) return this.draw();
      const peak = this.spectrum ? snapToPeak(this.spectrum, end.fy, end.fx) : end;
      if (Math.hypot(peak.fy, peak.fx) < this.binStep() / 2) return this.draw(); // DC: no notch
      const radius = Number((1.5 * this.binStep()).toFixed(4));
      this.add({ kind: "notch", fy: Number(peak.fy.toFixed(4)), fx: Number(peak.fx.toFixed(4)), radius });
      return;
    }
    const region = regionFromDrag(this.mode(), start, end, this.binStep());
    if (region) this.add(region);
    else this.draw();
  }

  // ---- the list of regions ----
  unitsText(value, axis) {
    const { height, width } = this.size;
    if (axis === "deg" || !height || !Number.isFinite(value)) return "";
    if (axis === "y") return `= ${fmt(value * height, 1)} cycles/image`;
    if (axis === "x" || height === width) return `= ${fmt(value * width, 1)} cycles/image`;
    return `= ${fmt(value * width, 1)} (x) / ${fmt(value * height, 1)} (y) cycles/image`;
  }

  renderList() {
    this.list.replaceChildren(...this.regions.map((region, i) => this.item(region, i)));
  }

  item(region, i) {
    const fields = FIELDS[region.kind].map(([label, key, index, axis]) => {
      const id = `region-${i}-${key}${index ?? ""}`;
      const value = getField(region, key, index);
      const units = el("span", { class: "ci" }, this.unitsText(value, axis));
      const input = el("input", { id, type: "number", step: "any", value, required: true });
      input.addEventListener("input", () => {
        const v = Number.parseFloat(input.value);
        if (!Number.isFinite(v)) return;
        setField(region, key, index, v);
        units.textContent = this.unitsText(v, axis);
        this.changed();
      });
      const unitLabel = axis === "deg" ? "" : " (cycles/pixel)";
      return el("div", { class: "field" },
        el("label", { for: id }, label, el("span", { class: "sr-only" }, unitLabel)), input, units);
    });
    const note = this.notes[i] ? el("span", { class: "note" }, ` ${this.notes[i]}`) : null;
    const remove = el("button", {
      type: "button",
      class: "remove",
      "aria-label": `Remove region ${i + 1} (${region.kind})`,
      onclick: () => this.remove(i),
    }, "Remove");
    const box = el("fieldset", { class: "region" }, el("legend", {}, `${i + 1}. ${region.kind}`, note),
      ...fields, remove);
    box.addEventListener("focusin", () => {
      this.selected = i;
      this.draw();
    });
    return el("li", {}, box);
  }
}
