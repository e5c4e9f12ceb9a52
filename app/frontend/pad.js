// The drawing pad: a white-on-black canvas for mouse, touch and pen, and a Clear button.
//
// After each stroke (pointer up) it sends the whole drawing to Python as a PNG data URL (one
// trigger value, "stroke"); Python normalises it the MNIST way with the same `prepare_digit` an
// upload goes through, so there is one definition of the normalisation. "clear" says the pad
// was wiped. Nothing is sent while a stroke is being drawn.

const pads = (globalThis.__vaePads ??= new WeakMap()); // parentElement -> pad state, kept across reruns

function build(root, size, stroke) {
  const canvas = document.createElement("canvas");
  canvas.width = canvas.height = size;
  canvas.className = "pad";
  canvas.setAttribute("aria-label", "drawing pad");
  canvas.setAttribute("role", "img");
  const clear = document.createElement("button");
  clear.type = "button";
  clear.textContent = "Clear";
  clear.className = "clear";
  const hint = document.createElement("p");
  hint.className = "hint";
  hint.textContent = "Draw one digit, large, with the mouse, a finger or a pen.";
  const box = document.createElement("div");
  box.className = "padbox";
  box.append(canvas, hint, clear);
  root.appendChild(box);

  const ctx = canvas.getContext("2d");
  const wipe = () => { ctx.fillStyle = "#000"; ctx.fillRect(0, 0, size, size); canvas.dataset.strokes = "0"; };
  wipe();
  const pad = { canvas, ctx, drawing: false, last: null, strokes: 0, send: null };

  const at = (e) => { // the pointer in canvas pixels, whatever size CSS gives the canvas
    const r = canvas.getBoundingClientRect();
    return [(e.clientX - r.left) * (size / r.width), (e.clientY - r.top) * (size / r.height)];
  };
  const dot = ([x, y]) => { ctx.beginPath(); ctx.arc(x, y, stroke / 2, 0, 2 * Math.PI); ctx.fill(); };
  canvas.addEventListener("pointerdown", (e) => {
    if (e.button !== 0 && e.pointerType === "mouse") return;
    e.preventDefault();
    canvas.setPointerCapture(e.pointerId);
    ctx.fillStyle = ctx.strokeStyle = "#fff";
    ctx.lineWidth = stroke; ctx.lineCap = ctx.lineJoin = "round";
    pad.drawing = true;
    pad.last = at(e);
    dot(pad.last);
  });
  canvas.addEventListener("pointermove", (e) => {
    if (!pad.drawing) return;
    // Coalesced events: a fast pen or mouse gives several points per frame; use them all.
    for (const ev of e.getCoalescedEvents?.() ?? [e]) {
      const p = at(ev);
      ctx.beginPath(); ctx.moveTo(...pad.last); ctx.lineTo(...p); ctx.stroke();
      pad.last = p;
    }
  });
  const end = () => {
    if (!pad.drawing) return;
    pad.drawing = false;
    pad.strokes++;
    canvas.dataset.strokes = String(pad.strokes);
    pad.send("stroke", canvas.toDataURL("image/png"));
  };
  canvas.addEventListener("pointerup", end);
  canvas.addEventListener("pointercancel", end);
  clear.addEventListener("click", () => { wipe(); pad.strokes = 0; pad.send("clear", true); });
  return pad;
}

export default function mount({ parentElement, data, setTriggerValue }) {
  let pad = pads.get(parentElement);
  if (!pad) {
    pad = build(parentElement, data?.size ?? 280, data?.stroke ?? 22);
    pads.set(parentElement, pad);
  }
  pad.send = setTriggerValue; // the newest one, as the studio does
}
