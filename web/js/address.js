// A page's settings in its address, as TensorFlow Playground keeps them: every named control of a
// page's form is written into the URL's fragment (`race.html#function=beale&points=256&...`) with
// history.replaceState whenever one changes, so the address bar always holds what the visitor sees
// and can be shared or bookmarked; a page opened from such an address starts with those settings.
// web/js/demo.js does this for every demo page; an address edited by hand (a new fragment on the
// same page, which does not reload it) reloads the page from it there.
//
// The query presets controls the same way (`race.html?function=beale`, as links made before the
// fragment did); where both name a control, the fragment wins. Query keys that are no control but
// mean something to the page (the browser tests' `steps=N`) are kept in the query; the rest of the
// query is dropped once the fragment holds the settings.
//
// An entry that names no control, or a value its control cannot take (a select's value not among its
// options, a number out of its input's range or off its step, a checkbox other than 1/0/true/false),
// is not applied: the control keeps its default, and the page says which entries it ignored and why
// above its controls, logs them to the console, and lists them for the browser tests.

/** Checkbox values an address may hold. */
const CHECKBOX = { 1: true, true: true, on: true, 0: false, false: false, off: false };

/** The form's settings: its named inputs and selects (not its buttons), in the form's order. */
export function settings(form) {
  return [...form.elements].filter(
    (el) => el.name && (el.tagName === "SELECT" || (el.tagName === "INPUT" && el.type !== "button"))
  );
}

/** Sets `el` to `value` from an address; returns null, or why the value was not taken (and `el` kept its own). */
function apply(el, value) {
  if (el.type === "checkbox") {
    if (!Object.hasOwn(CHECKBOX, value)) return "a checkbox takes 1 or 0";
    el.checked = CHECKBOX[value];
    return null;
  }
  if (el.tagName === "SELECT") {
    const options = [...el.options].map((o) => o.value);
    if (!options.includes(value)) return `not one of ${options.join(", ")}`;
    el.value = value;
    return null;
  }
  const numeric = el.type === "number" || el.type === "range";
  if (numeric && (value.trim() === "" || !Number.isFinite(Number(value)))) return "not a number";
  const before = el.value;
  el.value = value;
  // A number input empties itself for what is no valid floating-point number (`0x10`, ` 5`) and
  // rejects out-of-range or off-step values through its validity; a range input clamps or rounds
  // them silently, which would show something else than the address says.
  let why = null;
  if (numeric && el.value === "") why = "not a number";
  else if (!el.validity.valid) why = el.validationMessage || "not a valid value";
  else if (el.type === "range" && Number(el.value) !== Number(value))
    why = `outside ${el.min}..${el.max} in steps of ${el.step || 1}`;
  if (why) el.value = before;
  return why;
}

/**
 * Applies the settings in the address (query, then fragment) to `form`'s controls. `keep`: query
 * keys that are no control but known to the page. Returns `{applied: {name: value}, ignored:
 * [{key, value, reason}]}` and shows the ignored entries (see `noteIgnored`).
 */
export function restoreSettings(form, keep = []) {
  const entries = [
    ...[...new URLSearchParams(location.search)].filter(([key]) => !keep.includes(key)),
    ...new URLSearchParams(location.hash.replace(/^#/, "")),
  ];
  const names = new Set(settings(form).map((el) => el.name));
  const applied = {};
  const ignored = [];
  for (const [key, value] of entries) {
    const reason = names.has(key) ? apply(form.elements[key], value) : "no such setting on this page";
    if (reason) ignored.push({ key, value, reason });
    else applied[key] = value;
  }
  noteIgnored(form, ignored);
  return { applied, ignored };
}

/** The form's settings as address parameters (checkboxes as 1 or 0). */
export function settingsParams(form) {
  const params = new URLSearchParams();
  for (const el of settings(form)) params.set(el.name, el.type === "checkbox" ? (el.checked ? "1" : "0") : el.value);
  return params;
}

/** Writes the form's settings into the address's fragment (no new history entry); returns the fragment. */
export function writeSettings(form, keep = []) {
  const query = new URLSearchParams([...new URLSearchParams(location.search)].filter(([key]) => keep.includes(key)));
  const fragment = settingsParams(form).toString();
  const search = query.size ? `?${query}` : "";
  history.replaceState(history.state, "", `${location.pathname}${search}#${fragment}`);
  return fragment;
}

/**
 * Shows the address entries that were not applied in a note above the form's controls (or hides
 * the note when there are none) and logs them to the console.
 */
export function noteIgnored(form, ignored) {
  let note = document.getElementById("address-note");
  if (!ignored.length) {
    if (note) note.hidden = true;
    return;
  }
  if (!note) {
    note = document.createElement("div");
    note.id = "address-note";
    note.className = "address-note";
    form.prepend(note);
  }
  const head = document.createElement("b");
  head.textContent = "Not taken from the address (defaults kept):";
  const list = document.createElement("ul");
  for (const { key, value, reason } of ignored) {
    const item = document.createElement("li");
    const code = document.createElement("code");
    code.textContent = `${key}=${value}`;
    item.append(code, `: ${reason}`);
    list.append(item);
    console.warn(`sfnap: address setting ${key}=${value} ignored: ${reason}`);
  }
  note.replaceChildren(head, list);
  note.hidden = false;
}
