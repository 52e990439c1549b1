// The console's few behaviours: htmx swaps 4xx answers (the domain's errors) in place,
// the login page polls its ticket, the dashboard draws its charts.
document.addEventListener("DOMContentLoaded", function () {
  if (window.htmx) {
    htmx.config.responseHandling = [
      { code: "204", swap: false },
      { code: "[23]..", swap: true },
      { code: "[4]..", swap: true, error: false },
      { code: "...", swap: false, error: true },
    ];
  }
  var login = document.getElementById("login");
  if (login) pollTicket(login.dataset.ticket);
  var data = document.getElementById("chart-data");
  if (data && window.echarts) drawCharts(JSON.parse(data.textContent));
});

function pollTicket(ticket) {
  var status = document.getElementById("login-status");
  var timer = setInterval(function () {
    fetch("/api/v1/auth/console/tickets/" + encodeURIComponent(ticket), { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : { status: "expired" }; })
      .then(function (body) {
        if (body.status === "confirmed") {
          clearInterval(timer);
          status.textContent = "已确认，正在进入控制台…";
          window.location.assign(body.redirect || "/console/");
        } else if (body.status === "expired") {
          clearInterval(timer);
          status.innerHTML = '二维码已过期，<a href="/console/login">点此刷新</a>';
        }
      });
  }, 1500);
}

function bar(id, title, rows, horizontal) {
  var el = document.getElementById(id);
  if (!el) return;
  var chart = echarts.init(el);
  var names = rows.map(function (r) { return r[0]; });
  var values = rows.map(function (r) { return r[1]; });
  var category = { type: "category", data: horizontal ? names.slice().reverse() : names };
  var value = { type: "value", minInterval: 1 };
  chart.setOption({
    title: { text: title, textStyle: { fontSize: 14 } },
    tooltip: {},
    grid: { left: horizontal ? 110 : 40, right: 20, top: 40, bottom: 30 },
    xAxis: horizontal ? value : category,
    yAxis: horizontal ? category : value,
    series: [{ type: "bar", data: horizontal ? values.slice().reverse() : values, itemStyle: { color: "#b3120f" } }],
  });
  window.addEventListener("resize", function () { chart.resize(); });
}

function drawCharts(data) {
  bar("chart-provinces", "流动党员所在地（省）排名", data.provinces, true);
  bar("chart-cities", "流动党员所在地（市）排名", data.cities, true);
  var months = echarts.init(document.getElementById("chart-months"));
  months.setOption({
    title: { text: "每月外出与返回", textStyle: { fontSize: 14 } },
    tooltip: { trigger: "axis" },
    legend: { data: ["外出", "返回"], right: 10 },
    grid: { left: 40, right: 20, top: 40, bottom: 30 },
    xAxis: { type: "category", data: data.months.map(function (m) { return m[0]; }) },
    yAxis: { type: "value", minInterval: 1 },
    series: [
      { name: "外出", type: "bar", data: data.months.map(function (m) { return m[1]; }), itemStyle: { color: "#b3120f" } },
      { name: "返回", type: "bar", data: data.months.map(function (m) { return m[2]; }), itemStyle: { color: "#1677ff" } },
    ],
  });
  var coverage = echarts.init(document.getElementById("chart-coverage"));
  coverage.setOption({
    title: { text: "两个覆盖率（按类型，%）", textStyle: { fontSize: 14 } },
    tooltip: { trigger: "axis" },
    legend: { data: ["组织覆盖率", "两个覆盖率"], right: 10 },
    grid: { left: 40, right: 20, top: 40, bottom: 30 },
    xAxis: { type: "category", data: data.coverage.map(function (c) { return c[0]; }) },
    yAxis: { type: "value", max: 100 },
    series: [
      { name: "组织覆盖率", type: "bar", data: data.coverage.map(function (c) { return c[1]; }) },
      { name: "两个覆盖率", type: "bar", data: data.coverage.map(function (c) { return c[2]; }) },
    ],
  });
  [months, coverage].forEach(function (c) { window.addEventListener("resize", function () { c.resize(); }); });
  document.body.dataset.chartsReady = "true";
}
