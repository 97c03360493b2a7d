// The board page: the zone's schools, the live alert inbox and the plans awaiting the member's vote.
// Every string from the server reaches the page as text or an attribute value, never as markup.

const zone = document.body.dataset.zone;
const zonePath = `/zones/${encodeURIComponent(zone)}`;
const SVG_NS = "http://www.w3.org/2000/svg";
const STATUS = { meeting: "Meeting", approaching: "Approaching", off_track: "Off track", insufficient_data: "Insufficient data" };
const SUBJECTS = { ELA: "ELA", MATH: "Math", SCI: "Science" };
const FLAGS = {
  low_participation: "Low participation", improbable_gain: "Improbable gain",
  low_scorer_drop: "Low scorers missing", exemption_spike: "Exemption spike",
};
const SEVERITY = { critical: "Critical", warning: "Warning", info: "Info" };
const ALERT_PAGE = 30;
const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
const date = new Intl.DateTimeFormat(undefined, { dateStyle: "medium" });

const $ = (id) => document.getElementById(id);

// Elements from a tag, attributes and children; strings become text nodes.
function build(namespace, tag, attributes, children) {
  const node = namespace ? document.createElementNS(namespace, tag) : document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value !== null && value !== undefined && value !== false) node.setAttribute(name, value === true ? "" : String(value));
  }
  node.append(...children.filter((child) => child !== null && child !== undefined && child !== false));
  return node;
}
const h = (tag, attributes = {}, ...children) => build(null, tag, attributes, children);
const svg = (tag, attributes = {}, ...children) => build(SVG_NS, tag, attributes, children);

const percent = (value) => (value === null || value === undefined ? null : `${Math.round(value)}%`);
const words = (key) => key.charAt(0).toUpperCase() + key.slice(1).replaceAll("_", " ");

// Only web links become anchors: a link in an alert must not be able to run script.
function webUrl(value) {
  try {
    const url = new URL(value, window.location.href);
    return url.protocol === "http:" || url.protocol === "https:" ? url.href : null;
  } catch {
    return null;
  }
}

class SessionEnded extends Error {}

function showBanner(...content) {
  const banner = $("banner");
  banner.replaceChildren(...content);
  banner.hidden = false;
}

let signedOut = false;

function sessionEnded() {
  signedOut = true;
  showBanner("Your session has ended. ", h("a", { href: "/board" }, "Sign in again"), ".");
  setLive("offline", "Signed out");
}

async function api(path, options = {}) {
  const response = await fetch(zonePath + path, { headers: { Accept: "application/json" }, ...options });
  if (response.status === 401) {
    sessionEnded();
    throw new SessionEnded();
  }
  if (!response.ok) {
    const problem = await response.json().catch(() => ({}));
    throw new Error(problem.detail || `${response.status} ${response.statusText}`);
  }
  return response.json();
}

function reportError(error) {
  if (!(error instanceof SessionEnded)) showBanner(`Something went wrong: ${error.message}`);
}

// ---------- Schools ----------

let chartCount = 0;

function statusChip(latest) {
  if (!latest) return h("span", { class: "chip chip-none" }, "Not reviewed");
  return h("span", { class: `chip chip-${latest.status}` }, STATUS[latest.status] ?? words(latest.status));
}

// One marker per kind of flag; a kind raised for several subgroups lists every summary in its title.
function flagList(flags) {
  if (!flags.length) return null;
  const byKind = new Map();
  for (const flag of flags) byKind.set(flag.kind, [...(byKind.get(flag.kind) ?? []), flag.summary]);
  return h("ul", { class: "flags" }, ...[...byKind].map(([kind, summaries]) => {
    const label = FLAGS[kind] ?? words(kind);
    const counted = summaries.length > 1 ? `${label} (${summaries.length})` : label;
    return h("li", {},
      h("span", { class: "flag", title: summaries.join("\n") },
        h("span", { "aria-hidden": "true" }, "⚑ "), counted,
        h("span", { class: "visually-hidden" }, `: ${summaries.join(" ")}`)));
  }));
}

// A small line chart of all-students proficiency by school year, with the plan's goal as a dashed line or tick.
function trendChart(schoolName, subject, trend) {
  if (!trend.length) return null;
  const width = 214, height = 66, padX = 26, padTop = 8, padBottom = 15;
  const values = trend.flatMap((point) => [point.proficiency_rate, point.goal]).filter((v) => v !== null);
  const top = Math.max(10, Math.ceil((Math.max(0, ...values) * 1.15) / 10) * 10);
  const x = (i) => (trend.length === 1 ? width / 2 : padX + (i * (width - 2 * padX)) / (trend.length - 1));
  const y = (v) => padTop + (1 - v / top) * (height - padTop - padBottom);
  const id = `trend-${++chartCount}`;
  const described = trend.map((p) => {
    const goal = p.goal === null ? "" : `, goal ${percent(p.goal)}`;
    return `${p.school_year}: ${percent(p.proficiency_rate) ?? "no result"}${goal}`;
  }).join("; ");
  const chart = svg("svg", {
    class: "trend", width, height, viewBox: `0 0 ${width} ${height}`, role: "img", "aria-labelledby": `${id}-t ${id}-d`,
  },
  svg("title", { id: `${id}-t` }, `${SUBJECTS[subject] ?? subject} proficiency at ${schoolName} against the plan goal`),
  svg("desc", { id: `${id}-d` }, described),
  svg("line", { class: "axis", x1: 0, x2: width, y1: y(0), y2: y(0) }));

  trend.forEach((point, i) => {
    if (point.goal === null) return;
    const next = trend[i + 1];
    if (next && next.goal !== null) {
      chart.append(svg("line", { class: "goal-line", x1: x(i), x2: x(i + 1), y1: y(point.goal), y2: y(next.goal) }));
    }
    chart.append(svg("line", { class: "goal-tick", x1: x(i) - 7, x2: x(i) + 7, y1: y(point.goal), y2: y(point.goal) }));
  });

  // The proficiency line breaks where a year has no figure (not reviewed, or too few students).
  let run = [];
  const flush = () => {
    if (run.length > 1) chart.append(svg("polyline", { class: "actual", points: run.join(" ") }));
    run = [];
  };
  trend.forEach((point, i) => {
    if (point.proficiency_rate === null) return flush();
    run.push(`${x(i)},${y(point.proficiency_rate)}`);
  });
  flush();
  let last = null;
  trend.forEach((point, i) => {
    if (point.proficiency_rate === null) return;
    const below = point.goal !== null && point.proficiency_rate < point.goal;
    chart.append(svg("circle", { class: below ? "point below" : "point", cx: x(i), cy: y(point.proficiency_rate), r: 3 }));
    last = i;
  });
  if (last !== null) {
    const value = trend[last].proficiency_rate;
    // Beside the newest point rather than above it, where the goal mark often is.
    chart.append(svg("text", { class: "value", x: x(last) + 6, y: y(value) + 3 }, percent(value)));
  }
  const labelled = trend.length <= 4 ? trend.map((_, i) => i) : [0, trend.length - 1];
  for (const i of labelled) {
    const anchor = trend.length === 1 ? "middle" : i === 0 ? "start" : i === trend.length - 1 ? "end" : "middle";
    const shift = anchor === "start" ? -padX + 2 : anchor === "end" ? padX - 2 : 0;
    chart.append(svg("text", { x: x(i) + shift, y: height - 2, "text-anchor": anchor }, trend[i].school_year));
  }
  return chart;
}

function subjectCell(school, entry) {
  const latest = entry.latest;
  const figures = [];
  if (latest) {
    const proficiency = percent(latest.proficiency_rate);
    figures.push(...(proficiency ? [h("strong", {}, proficiency), " proficient"] : ["too few students to report"]));
    if (latest.goal !== null) figures.push(" · goal ", h("strong", {}, percent(latest.goal)));
    if (latest.participation_rate !== null) figures.push(h("br"), `participation ${percent(latest.participation_rate)}`);
  }
  // The chip opens the review's page, where its reasons and trend are.
  const chip = latest
    ? h("a", { href: `/board/schools/${school.id}/reviews/${latest.school_year}/${entry.subject}`, class: "review-link" },
      statusChip(latest), h("span", { class: "visually-hidden" }, ` — ${SUBJECTS[entry.subject] ?? entry.subject} review of ${school.name}`))
    : statusChip(latest);
  return h("td", { "data-subject": entry.subject },
    h("div", { class: "cell-top" }, chip, latest ? h("span", { class: "year" }, latest.school_year) : null),
    figures.length ? h("div", { class: "figures" }, ...figures) : null,
    // Why: the review's own sentence (its page has the goals' too).
    latest?.reasons?.length ? h("p", { class: "reason" }, latest.reasons[0]) : null,
    latest ? flagList(latest.flags) : null,
    trendChart(school.name, entry.subject, entry.trend));
}

function renderSchools(overview) {
  const headRow = h("tr", {}, h("th", { scope: "col" }, "School"),
    ...overview.subjects.map((subject) => h("th", { scope: "col" }, SUBJECTS[subject] ?? subject)));
  $("schools").tHead.replaceChildren(headRow);
  $("schools").tBodies[0].replaceChildren(...overview.schools.map((school) => {
    const meta = [school.code, `grades ${school.grade_span}`];
    if (school.enrollment !== null) meta.push(`${school.enrollment} students`);
    return h("tr", { "data-school-id": school.id },
      h("th", { scope: "row" }, h("a", { href: `/board/schools/${school.id}` }, school.name),
        h("span", { class: "school-meta" }, meta.join(" · "))),
      ...school.subjects.map((entry) => subjectCell(school, entry)));
  }));
  const offTrack = overview.schools.filter((s) => s.subjects.some((e) => e.latest?.status === "off_track")).length;
  const flagged = overview.schools.filter((s) => s.subjects.some((e) => e.latest?.flags.length)).length;
  const summary = [`${overview.schools.length} schools`];
  if (offTrack) summary.push(`${offTrack} off track in a subject`);
  if (flagged) summary.push(`${flagged} with integrity flags`);
  $("schools-summary").textContent = summary.join(" · ");
}

function renderMember(member) {
  if (member.name) $("member-name").textContent = member.seat ? `${member.name} (seat ${member.seat})` : member.name;
}

function renderPlans(plans, role) {
  const list = $("plans");
  const empty = $("plans-empty");
  const count = $("votes-count");
  list.replaceChildren(...plans.map((plan) => {
    const meta = [`${plan.school_year} plan`, `version ${plan.version}`];
    if (plan.amendment) meta.push("amendment");
    const link = webUrl(plan.link);
    return h("li", { "data-plan-id": plan.plan_id },
      link ? h("a", { href: link }, plan.school_name) : h("strong", {}, plan.school_name),
      h("div", { class: "plan-meta" }, meta.join(" · ")),
      h("div", { class: "plan-meta" }, "Submitted ",
        h("time", { datetime: plan.submitted_at }, date.format(new Date(plan.submitted_at)))));
  }));
  count.hidden = plans.length === 0;
  count.textContent = String(plans.length);
  empty.hidden = plans.length > 0;
  empty.textContent = role === "board"
    ? "No plan is waiting for your vote."
    : `Board members vote on plans; you are signed in with a ${role} token.`;
}

async function loadOverview() {
  const overview = await api("/board/overview");
  renderMember(overview.member);
  renderSchools(overview);
  renderPlans(overview.plans_awaiting_vote, overview.member.role);
  if (!signedOut) $("banner").hidden = true; // whatever failed before has recovered
}
const OVERVIEW_REFRESH_MS = 60_000; // votes cast elsewhere raise no alert for this member; catch up with them

// A burst of alerts (e.g. reviews of several schools) refreshes what they change once.
function debounced(load, delayMs) {
  let timer = null;
  return () => {
    clearTimeout(timer);
    timer = setTimeout(() => load().catch(reportError), delayMs);
  };
}
const refreshOverviewSoon = debounced(loadOverview, 400);

// ---------- Alerts ----------

const shown = new Map(); // alert id → { alert, node }
let filter = "active";
let olderThan = null;

// The same rule as the inbox API's `state`: a superseded alert leaves the active list, a read one the unread list.
const FILTERS = {
  active: (alert) => !alert.superseded_at,
  unread: (alert) => !alert.superseded_at && !alert.read_at,
  all: () => true,
};

function alertState(alert) {
  if (alert.superseded_at) return "Superseded";
  if (alert.acknowledged_at) return "Acknowledged";
  return alert.read_at ? "Read" : "Unread";
}

function alertNode(alert, fresh) {
  const settled = Boolean(alert.superseded_at || alert.acknowledged_at);
  const classes = ["alert", `sev-${alert.severity}`];
  if (!alert.read_at && !alert.superseded_at) classes.push("unread");
  if (settled) classes.push("settled");
  if (fresh) classes.push("fresh");
  const links = Object.entries(alert.links ?? {})
    .map(([name, url]) => [name, webUrl(url)])
    .filter(([, url]) => url)
    .map(([name, url]) => h("a", { href: url, rel: "noopener" }, words(name)));
  // The alert's own page: where it was sent, and its trace id.
  links.push(h("a", { href: `/board/alerts/${encodeURIComponent(alert.id)}` }, "Details",
    h("span", { class: "visually-hidden" }, ` of ${alert.title}`)));
  const actions = [];
  if (!alert.superseded_at && !alert.read_at) {
    actions.push(h("button", { type: "button", "data-action": "read" }, "Mark read"));
  }
  if (!alert.superseded_at && !alert.acknowledged_at) {
    actions.push(h("button", { type: "button", "data-action": "acknowledge" }, "Acknowledge"));
  }
  const node = h("li", { class: classes.join(" "), "data-alert-id": alert.id, "data-seq": alert.seq },
    h("div", { class: "alert-meta" },
      h("span", { class: "sev" }, SEVERITY[alert.severity] ?? alert.severity),
      h("time", { datetime: alert.created_at }, dateTime.format(new Date(alert.created_at))),
      h("span", { class: "state" }, alertState(alert))),
    h("h3", { class: "alert-title" }, alert.title),
    h("p", { class: "alert-body" }, alert.body),
    h("div", { class: "alert-links" }, ...links),
    // For an operator: the trace of the request that caused the alert, to find it in the trace collector.
    alert.trace_id ? h("p", { class: "trace" }, "Trace id ", h("code", {}, alert.trace_id)) : null,
    actions.length ? h("div", { class: "alert-actions" }, ...actions) : null);
  node.addEventListener("click", (event) => {
    const action = event.target.closest("button")?.dataset.action;
    if (action) act(alert.id, action);
  });
  return node;
}

// Places an alert in the list by its sequence, newest first, replacing the one shown with the same id.
function showAlert(alert, { fresh = false } = {}) {
  const current = shown.get(alert.id);
  if (!FILTERS[filter](alert)) {
    current?.node.remove();
    shown.delete(alert.id);
    $("alerts-empty").hidden = shown.size > 0;
    return;
  }
  const node = alertNode(alert, fresh);
  shown.set(alert.id, { alert, node });
  if (current) {
    current.node.replaceWith(node);
  } else {
    const list = $("alerts");
    const after = [...list.children].find((item) => Number(item.dataset.seq) < alert.seq);
    list.insertBefore(node, after ?? null);
  }
  $("alerts-empty").hidden = shown.size > 0;
}

function setUnread(count) {
  const badge = $("unread");
  badge.hidden = count === 0;
  badge.textContent = String(count);
  badge.setAttribute("aria-label", `${count} unread`);
  document.title = count ? `(${count}) Zone board · ezone` : "Zone board · ezone";
}

async function refreshUnread() {
  setUnread((await api("/alerts?state=unread&limit=1")).unread);
}
const refreshUnreadSoon = debounced(refreshUnread, 200);

async function loadAlerts({ older = false } = {}) {
  const params = new URLSearchParams({ state: filter, limit: String(ALERT_PAGE) });
  if (older && olderThan !== null) params.set("before_seq", String(olderThan));
  const page = await api(`/alerts?${params}`);
  // Merged by id: an alert the stream delivered while this page was being read stays where it is.
  page.items.forEach((alert) => showAlert(alert));
  // The cursor only moves down the list: refreshing the newest page keeps the older alerts already shown.
  if (older || olderThan === null) olderThan = page.next_before_seq ?? null;
  $("older").hidden = olderThan === null;
  $("alerts-empty").hidden = shown.size > 0;
  setUnread(page.unread);
}

function clearAlerts() {
  shown.clear();
  olderThan = null;
  $("alerts").replaceChildren();
}

async function act(alertId, action) {
  try {
    showAlert(await api(`/alerts/${encodeURIComponent(alertId)}/${action}`, { method: "POST" }));
    await refreshUnread();
  } catch (error) {
    reportError(error);
  }
}

function setLive(state, text) {
  const live = $("live");
  live.dataset.state = state;
  live.textContent = text;
}

// New alerts arrive on the stream and are added to the top; the browser reconnects on its own and sends
// Last-Event-ID, so nothing raised while it was away is missed.
function connectStream() {
  const source = new EventSource(`${zonePath}/alerts/stream`);
  source.addEventListener("open", () => setLive("live", "Live"));
  source.addEventListener("alert", (event) => {
    showAlert(JSON.parse(event.data), { fresh: true });
    refreshUnreadSoon();
    refreshOverviewSoon();
  });
  source.addEventListener("alert-updated", (event) => {
    const alert = JSON.parse(event.data);
    if (shown.has(alert.id)) showAlert(alert);
    refreshUnreadSoon();
  });
  source.addEventListener("error", () => {
    if (source.readyState !== EventSource.CLOSED) {
      setLive("reconnecting", "Reconnecting…");
      return;
    }
    // The server refused the stream (e.g. the session ended): find out why, then start afresh.
    setLive("offline", "Offline");
    loadAlerts()
      .then(() => setTimeout(connectStream, 3000))
      .catch(reportError);
  });
}

function setUpFilters() {
  for (const button of document.querySelectorAll(".filters button")) {
    button.addEventListener("click", () => {
      filter = button.dataset.state;
      for (const other of document.querySelectorAll(".filters button")) {
        other.setAttribute("aria-pressed", String(other === button));
      }
      clearAlerts();
      loadAlerts().catch(reportError);
    });
  }
  $("older").addEventListener("click", () => loadAlerts({ older: true }).catch(reportError));
}

setUpFilters();
connectStream(); // before the first page of alerts, so that none raised in between is missed
Promise.all([loadOverview(), loadAlerts()]).catch(reportError);
setInterval(() => {
  if (document.visibilityState === "visible") loadOverview().catch(reportError);
}, OVERVIEW_REFRESH_MS);
