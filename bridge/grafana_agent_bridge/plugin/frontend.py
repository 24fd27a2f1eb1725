"""The plugin's browser side: a hand-written ``module.js`` and the logo.

Grafana's UI loads ``module.js`` for the datasource settings page and the query editor (panels and
alert rules both use it); the queries themselves go to the backend through
``DataSourceWithBackend``. It is an AMD module written against Grafana's shared runtime packages
(``@grafana/data``, ``@grafana/runtime``, ``@grafana/ui``, ``react``), with no build step, so the
Python package can carry it as a plain string.
"""

from __future__ import annotations

MODULE_JS = """\
/* grafana-agent-bridge datasource plugin: settings page and query editor (no build step). */
define(["@grafana/data", "@grafana/runtime", "@grafana/ui", "react"], function (
  data, runtime, ui, React
) {
  "use strict";
  var h = React.createElement;

  class DataSource extends runtime.DataSourceWithBackend {
    getDefaultQuery() {
      return { expr: "", range: true, instant: false };
    }
    filterQuery(query) {
      return !query.hide && typeof query.expr === "string" && query.expr.trim() !== "";
    }
    applyTemplateVariables(query, scopedVars) {
      // Leave the time variables to the backend, which computes them as Grafana's does.
      var vars = Object.assign({}, scopedVars);
      ["__interval", "__interval_ms", "__rate_interval", "__range", "__range_s", "__range_ms"]
        .forEach(function (name) { delete vars[name]; });
      var expr = runtime.getTemplateSrv().replace(query.expr, vars, "regex");
      return Object.assign({}, query, { expr: expr });
    }
  }

  function ConfigEditor(props) {
    var options = props.options;
    var jsonData = options.jsonData || {};
    function setJson(key, value) {
      var next = Object.assign({}, jsonData);
      next[key] = value;
      props.onOptionsChange(Object.assign({}, options, { jsonData: next }));
    }
    return h("div", null,
      h(ui.DataSourceHttpSettings, {
        defaultUrl: "http://127.0.0.1:9090",
        dataSourceConfig: options,
        onChange: props.onOptionsChange,
        showAccessOptions: false
      }),
      h(ui.InlineField, { label: "Scrape interval", labelWidth: 20,
                          tooltip: "Minimum step; base of $__rate_interval (default 15s)" },
        h(ui.Input, { width: 20, placeholder: "15s", value: jsonData.timeInterval || "",
                      onChange: function (e) { setJson("timeInterval", e.currentTarget.value); }
        })),
      h(ui.InlineField, { label: "Query timeout", labelWidth: 20 },
        h(ui.Input, { width: 20, placeholder: "30s", value: jsonData.queryTimeout || "",
                      onChange: function (e) { setJson("queryTimeout", e.currentTarget.value); }
        })),
      h(ui.InlineField, { label: "HTTP method", labelWidth: 20 },
        h(ui.RadioButtonGroup, {
          options: [{ label: "POST", value: "POST" }, { label: "GET", value: "GET" }],
          value: jsonData.httpMethod || "POST",
          onChange: function (v) { setJson("httpMethod", v); }
        })));
  }

  function QueryEditor(props) {
    var query = props.query;
    function set(key, value, run) {
      var next = Object.assign({}, query);
      next[key] = value;
      props.onChange(next);
      if (run) { props.onRunQuery(); }
    }
    return h("div", null,
      h(ui.InlineField, { label: "PromQL", labelWidth: 14, grow: true },
        h(ui.TextArea, { rows: 3, value: query.expr || "", placeholder: "up",
                         onChange: function (e) { set("expr", e.currentTarget.value, false); },
                         onBlur: function () { props.onRunQuery(); } })),
      h(ui.InlineFieldRow, null,
        h(ui.InlineField, { label: "Legend", labelWidth: 14,
                            tooltip: "Series name template, e.g. {{instance}}" },
          h(ui.Input, { width: 30, value: query.legendFormat || "",
                        onChange: function (e) {
                          set("legendFormat", e.currentTarget.value, false);
                        },
                        onBlur: function () { props.onRunQuery(); } })),
        h(ui.InlineField, { label: "Min step", labelWidth: 14 },
          h(ui.Input, { width: 12, value: query.interval || "", placeholder: "auto",
                        onChange: function (e) { set("interval", e.currentTarget.value, false); },
                        onBlur: function () { props.onRunQuery(); } })),
        h(ui.InlineField, { label: "Type", labelWidth: 10 },
          h(ui.RadioButtonGroup, {
            options: [{ label: "Range", value: "range" }, { label: "Instant", value: "instant" }],
            value: query.instant ? "instant" : "range",
            onChange: function (v) {
              var next = Object.assign({}, query, {
                instant: v === "instant", range: v === "range"
              });
              props.onChange(next);
              props.onRunQuery();
            }
          }))));
  }

  return {
    plugin: new data.DataSourcePlugin(DataSource)
      .setConfigEditor(ConfigEditor)
      .setQueryEditor(QueryEditor)
  };
});
"""

LOGO_SVG = """\
<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 64 64" width="64" height="64">
  <rect width="64" height="64" rx="12" fill="#e95420"/>
  <path d="M10 44 L24 28 L34 36 L54 16" stroke="#fff" stroke-width="6" fill="none"
        stroke-linecap="round" stroke-linejoin="round"/>
</svg>
"""
