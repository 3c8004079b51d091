/*
 * lgdp-chart: draws one chart of a benchmarking panel (kind "trend" or
 * "ranking") with ECharts' SVG renderer, from the JSON the page embeds.
 * The same figures are in the table beside the chart, so the page reads
 * the same without JavaScript.
 */
this.ckan.module('lgdp-chart', function ($) {
  'use strict';

  var COLOURS = {
    council: '#0b5394', family: '#d55e00', scotland: '#4d4d4d',
    bar: '#9ecae1', highlight: '#0b5394', flagged: '#b3261e'
  };

  function fmt(v) {
    if (v === null || v === undefined) { return '–'; }
    return Math.abs(v) >= 100 ? Math.round(v).toLocaleString() : v.toFixed(1);
  }

  function trend(data) {
    var t = data.trend;
    return {
      animation: false,
      title: {text: t.title, textStyle: {fontSize: 13}},
      tooltip: {trigger: 'axis', valueFormatter: fmt},
      legend: {bottom: 0},
      grid: {left: 60, right: 20, top: 40, bottom: 50},
      xAxis: {type: 'category', data: t.periods},
      yAxis: {type: 'value', scale: true},
      series: t.series.map(function (s) {
        return {
          name: s.name, type: 'line', connectNulls: false,
          lineStyle: {width: s.role === 'council' ? 3 : 2, type: s.role === 'family' ? 'dashed' : 'solid'},
          itemStyle: {color: COLOURS[s.role]},
          data: s.data.map(function (v, i) {
            if (s.flagged && s.flagged[i]) {
              return {value: v, symbol: 'triangle', symbolSize: 14, itemStyle: {color: COLOURS.flagged}};
            }
            return v;
          })
        };
      })
    };
  }

  function ranking(data) {
    var r = data.ranking;
    var lines = [];
    if (r.scotland !== null && r.scotland !== undefined) {
      lines.push({xAxis: r.scotland, name: r.labels.scotland, lineStyle: {color: COLOURS.scotland}});
    }
    if (r.family !== null && r.family !== undefined) {
      lines.push({xAxis: r.family, name: r.labels.family, lineStyle: {color: COLOURS.family, type: 'dashed'}});
    }
    return {
      animation: false,
      tooltip: {trigger: 'axis', axisPointer: {type: 'shadow'}, valueFormatter: fmt},
      grid: {left: 150, right: 40, top: 10, bottom: 30},
      xAxis: {type: 'value', scale: !r.from_zero},
      yAxis: {type: 'category', inverse: true, data: r.names, axisLabel: {fontSize: 11, interval: 0}},
      series: [{
        type: 'bar', name: data.measure,
        data: r.values.map(function (v, i) {
          var style = {color: r.highlight[i] ? COLOURS.highlight : COLOURS.bar};
          if (r.flagged[i]) { style.borderColor = COLOURS.flagged; style.borderWidth = 2; style.borderType = 'dashed'; }
          return {value: v, itemStyle: style, gss: r.codes[i]};
        }),
        markLine: {symbol: 'none', label: {formatter: '{b}', position: 'insideEndTop'}, data: lines}
      }]
    };
  }

  return {
    options: {source: null, kind: 'trend'},

    initialize: function () {
      var node = this.el[0];
      var source = document.getElementById(this.options.source);
      if (typeof echarts === 'undefined' || !source) { return; }
      var data = JSON.parse(source.textContent);
      var kind = this.options.kind;
      node.style.height = kind === 'ranking' ? Math.max(320, 20 * data.ranking.names.length + 40) + 'px' : '320px';
      var chart = echarts.init(node, null, {renderer: 'svg'});
      chart.setOption(kind === 'ranking' ? ranking(data) : trend(data));
      node.setAttribute('data-rendered', kind);
      $(window).on('resize', function () { chart.resize(); });
    }
  };
});
