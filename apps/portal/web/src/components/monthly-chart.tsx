import { BarController, BarElement, CategoryScale, Chart, Legend, LinearScale, Tooltip } from 'chart.js';
import { useEffect, useRef } from 'preact/hooks';

Chart.register(BarController, BarElement, CategoryScale, LinearScale, Tooltip, Legend);

export interface MonthCount {
  readonly month: string;
  readonly total: number;
}

function monthLabel(m: string): string {
  const [y, mm] = m.split('-');
  return `${y}年${Number(mm)}月`;
}

/** Exchanges per month (Japan time), with the same numbers as a table for screen readers and print. */
export function MonthlyChart({ months }: { months: readonly MonthCount[] }) {
  const canvas = useRef<HTMLCanvasElement>(null);
  useEffect(() => {
    if (canvas.current === null || months.length === 0) return;
    const chart = new Chart(canvas.current, {
      type: 'bar',
      data: {
        labels: months.map((m) => monthLabel(m.month)),
        datasets: [{ label: '情報連携の件数', data: months.map((m) => m.total), backgroundColor: '#0031d8', borderRadius: 4, maxBarThickness: 48 }],
      },
      options: {
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        plugins: { legend: { display: false }, tooltip: { callbacks: { label: (c) => `${String(c.raw)} 件` } } },
        scales: { y: { beginAtZero: true, ticks: { precision: 0, color: '#333333' }, title: { display: true, text: '件数', color: '#333333' } }, x: { ticks: { color: '#333333' } } },
      },
    });
    return () => chart.destroy();
  }, [months]);

  if (months.length === 0) return <p>この期間の情報連携はありません。</p>;
  const total = months.reduce((n, m) => n + m.total, 0);
  return (
    <figure class="chart">
      <div class="chart__canvas">
        <canvas ref={canvas} role="img" aria-label={`月別の情報連携の件数のグラフ。${months.map((m) => `${monthLabel(m.month)} ${m.total}件`).join('、')}。`} />
      </div>
      <figcaption>月別の情報連携の件数（日本時間、合計 {total} 件）</figcaption>
      <details class="chart__table">
        <summary>表で見る</summary>
        <table class="table">
          <thead>
            <tr>
              <th scope="col">月</th>
              <th scope="col">件数</th>
            </tr>
          </thead>
          <tbody>
            {months.map((m) => (
              <tr key={m.month}>
                <th scope="row">{monthLabel(m.month)}</th>
                <td>{m.total}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </details>
    </figure>
  );
}
