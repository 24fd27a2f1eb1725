"""The plugin's module.js, run in node against minimal stand-ins for Grafana's runtime packages.

Grafana's frontend cannot run here, so the stand-ins provide only what module.js touches:
``define`` (AMD, as Grafana's SystemJS loader offers it), ``DataSourceWithBackend``,
``DataSourcePlugin``, ``getTemplateSrv`` and a ``createElement`` that records the element tree.
The test checks the module's own logic: what it exports, which queries it runs, and what the
editors write into the query and the datasource settings.
"""

import json
import shutil
import subprocess

import pytest

from grafana_agent_bridge.plugin.frontend import MODULE_JS

pytestmark = pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")

HARNESS = r"""
const fs = require("fs");
const results = {};
let exported = null;
global.define = (deps, factory) => {
  results.deps = deps;
  const data = {
    DataSourcePlugin: class {
      constructor(ds) { this.DataSourceClass = ds; }
      setConfigEditor(c) { this.config = c; return this; }
      setQueryEditor(q) { this.query = q; return this; }
    },
  };
  const runtime = {
    DataSourceWithBackend: class { constructor(settings) { this.settings = settings; } },
    getTemplateSrv: () => ({
      replace: (s, vars, fmt) => {
        results.replaceFormat = fmt;
        for (const [name, v] of Object.entries(vars)) { s = s.split("$" + name).join(v.value); }
        return s;
      },
    }),
  };
  const ui = new Proxy({}, { get: (_t, name) => name });
  const React = { createElement: (type, props, ...children) => ({ type, props, children }) };
  exported = factory(data, runtime, ui, React);
};
eval(fs.readFileSync(process.argv[2], "utf8"));

const find = (node, pred, out = []) => {
  if (node && typeof node === "object") {
    if (pred(node)) out.push(node);
    (node.children || []).forEach((c) => find(c, pred, out));
  }
  return out;
};

const plugin = exported.plugin;
const ds = new plugin.DataSourceClass({ uid: "x" });
results.defaultQuery = ds.getDefaultQuery();
results.filter = [
  ds.filterQuery({ expr: "up" }),
  ds.filterQuery({ expr: "  " }),
  ds.filterQuery({ expr: "up", hide: true }),
];
results.applied = ds.applyTemplateVariables(
  { refId: "A", expr: 'rate(up{job="$job"}[$__rate_interval]) * $__interval_ms' },
  { job: { value: "node" }, __interval: { value: "1s" }, __interval_ms: { value: "1000" } });

// Query editor: switch to instant, type a legend.
let query = { refId: "A", expr: "up", range: true, instant: false };
let runs = 0;
const qprops = { query, onChange: (q) => { query = q; }, onRunQuery: () => { runs += 1; } };
const qtree = plugin.query(qprops);
const radio = find(qtree, (n) => n.type === "RadioButtonGroup")[0];
radio.props.onChange("instant");
results.afterRadio = query;
results.runs = runs;

// Config editor: set the scrape interval and the HTTP method.
let options = { jsonData: { httpMethod: "POST" }, url: "http://b:9090" };
const cprops = { options, onOptionsChange: (o) => { options = o; } };
const ctree = plugin.config(cprops);
const inputs = find(ctree, (n) => n.type === "Input");
inputs[0].props.onChange({ currentTarget: { value: "30s" } });
results.afterScrape = options.jsonData;
cprops.options = options;  // React re-renders the editor with the new settings
const rerendered = plugin.config(cprops);
find(rerendered, (n) => n.type === "RadioButtonGroup")[0].props.onChange("GET");
results.httpSettings = find(ctree, (n) => n.type === "DataSourceHttpSettings").length;
results.afterMethod = options.jsonData;
console.log(JSON.stringify(results));
"""


def run_module(tmp_path):
    module = tmp_path / "module.js"
    module.write_text(MODULE_JS)
    harness = tmp_path / "harness.js"
    harness.write_text(HARNESS)
    done = subprocess.run(
        ["node", str(harness), str(module)],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_module_exports_a_backend_datasource_plugin(tmp_path):
    got = run_module(tmp_path)
    assert got["deps"] == ["@grafana/data", "@grafana/runtime", "@grafana/ui", "react"]
    assert got["defaultQuery"] == {"expr": "", "range": True, "instant": False}
    assert got["filter"] == [True, False, False]  # empty and hidden queries are not sent
    # Dashboard variables are replaced; time variables are left for the backend to compute.
    assert got["applied"] == {
        "refId": "A",
        "expr": 'rate(up{job="node"}[$__rate_interval]) * $__interval_ms',
    }
    assert got["replaceFormat"] == "regex"


def test_editors_write_what_the_backend_reads(tmp_path):
    got = run_module(tmp_path)
    assert got["afterRadio"] == {"refId": "A", "expr": "up", "range": False, "instant": True}
    assert got["runs"] == 1
    assert got["afterScrape"] == {"httpMethod": "POST", "timeInterval": "30s"}
    assert got["httpSettings"] == 1
    assert got["afterMethod"] == {"httpMethod": "GET", "timeInterval": "30s"}
