package demo

import (
	"context"
	"fmt"
	"math"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// Market data here is fictitious: every number is derived from a hash of the request, so the
// same question always gets the same answer and no clock or network is involved.

// The tables below are read-only.

// periodDays maps each analysis period to its number of trading days.
var periodDays = map[string]float64{"1d": 1, "1w": 5, "1m": 21, "3m": 63, "1y": 252}

var periods = []string{"1d", "1w", "1m", "3m", "1y"}

// regions are the markets and regions known to get_market_overview and get_sector_heatmap.
var regions = []string{"Vietnam", "Global", "US", "Europe", "Asia"}

// indexBases lists, per region, the indices of a market overview and a typical level.
var indexBases = map[string][]struct {
	name  string
	level float64
}{
	"Vietnam": {{"VN-Index", 1250}, {"VN30", 1310}, {"HNX-Index", 235}, {"UPCoM-Index", 94}},
	"US":      {{"S&P 500", 5200}, {"Nasdaq Composite", 16400}, {"Dow Jones Industrial Average", 39000}, {"Russell 2000", 2050}},
	"Europe":  {{"STOXX Europe 600", 510}, {"DAX", 18200}, {"CAC 40", 8000}, {"FTSE 100", 8100}},
	"Asia":    {{"Nikkei 225", 38500}, {"Hang Seng", 17600}, {"KOSPI", 2700}, {"Straits Times Index", 3300}},
	"Global":  {{"MSCI World", 3400}, {"MSCI ACWI", 780}, {"MSCI Emerging Markets", 1050}, {"FTSE All-World", 470}},
}

// sectors are the eleven GICS sectors, in GICS order.
var sectors = []string{
	"Energy", "Materials", "Industrials", "Consumer Discretionary", "Consumer Staples",
	"Health Care", "Financials", "Information Technology", "Communication Services",
	"Utilities", "Real Estate",
}

type stockAnalysisInput struct {
	Symbol string `json:"symbol" jsonschema:"Ticker symbol: 1 to 10 upper-case letters, e.g. VNM or MSFT."`
	Period string `json:"period,omitempty" jsonschema:"Look-back period for change and volume. Default 1d."`
}

type movingAverages struct {
	SMA20  float64 `json:"sma_20" jsonschema:"Simple moving average of the last 20 closes."`
	SMA50  float64 `json:"sma_50" jsonschema:"Simple moving average of the last 50 closes."`
	SMA200 float64 `json:"sma_200" jsonschema:"Simple moving average of the last 200 closes."`
}

type stockAnalysis struct {
	Symbol         string         `json:"symbol" jsonschema:"The analysed ticker symbol."`
	Period         string         `json:"period" jsonschema:"The look-back period of change and volume."`
	Currency       string         `json:"currency" jsonschema:"ISO 4217 currency of all prices."`
	AsOf           string         `json:"as_of" jsonschema:"Time of the analysis, RFC 3339 UTC."`
	Price          float64        `json:"price" jsonschema:"Last price."`
	Change         float64        `json:"change" jsonschema:"Absolute price change over the period."`
	ChangePercent  float64        `json:"change_percent" jsonschema:"Price change over the period, in percent."`
	Volume         int64          `json:"volume" jsonschema:"Shares traded over the period."`
	MovingAverages movingAverages `json:"moving_averages" jsonschema:"Simple moving averages of daily closes."`
	RSI14          float64        `json:"rsi_14" jsonschema:"14-day relative strength index, 0 to 100."`
	Recommendation string         `json:"recommendation" jsonschema:"buy, hold or sell."`
	Rationale      string         `json:"rationale" jsonschema:"One sentence explaining the recommendation."`
}

// lastPrice is the fictitious last price of a symbol; portfolios and orders use it too.
func lastPrice(symbol string) float64 {
	// Log-uniform between 5 and 800 gives a realistic spread of share prices.
	return round(math.Exp(newStream("price", symbol).between(math.Log(5), math.Log(800))), 2)
}

func (s *server) stockAnalysis(_ context.Context, _ *mcp.CallToolRequest, in stockAnalysisInput) (*mcp.CallToolResult, *stockAnalysis, error) {
	if err := checkSymbol(in.Symbol); err != nil {
		return nil, nil, err
	}
	period := in.Period
	if period == "" {
		period = "1d"
	}
	days, ok := periodDays[period]
	if !ok {
		return nil, nil, fmt.Errorf("invalid period %q: want one of %s", period, quoteList(periods))
	}

	price := lastPrice(in.Symbol)
	tech := newStream("technicals", in.Symbol)
	ma := movingAverages{
		SMA20:  round(price*(1+tech.between(-0.06, 0.06)), 2),
		SMA50:  round(price*(1+tech.between(-0.12, 0.12)), 2),
		SMA200: round(price*(1+tech.between(-0.25, 0.25)), 2),
	}
	rsi := round(tech.between(18, 82), 1)
	daily := tech.intBetween(40_000, 12_000_000)

	move := newStream("move", in.Symbol, period)
	// Daily volatility of about 2% grows with the square root of time.
	pct := move.between(-1, 1) * 0.02 * math.Sqrt(days)
	volume := int64(float64(daily) * days * move.between(0.8, 1.2))
	change := price - price/(1+pct)

	rec, why := recommend(rsi, price, ma.SMA50)
	return nil, &stockAnalysis{
		Symbol:         in.Symbol,
		Period:         period,
		Currency:       "USD",
		AsOf:           s.asOf(),
		Price:          price,
		Change:         round(change, 2),
		ChangePercent:  round(pct*100, 2),
		Volume:         volume,
		MovingAverages: ma,
		RSI14:          rsi,
		Recommendation: rec,
		Rationale:      why,
	}, nil
}

// recommend turns the indicators into a recommendation with its reason.
func recommend(rsi, price, sma50 float64) (string, string) {
	switch {
	case rsi < 30:
		return "buy", fmt.Sprintf("RSI %.1f is below 30: the stock looks oversold.", rsi)
	case rsi > 70:
		return "sell", fmt.Sprintf("RSI %.1f is above 70: the stock looks overbought.", rsi)
	case price > sma50*1.05:
		return "buy", "Price is more than 5% above its 50-day average: the trend is up."
	case price < sma50*0.95:
		return "sell", "Price is more than 5% below its 50-day average: the trend is down."
	default:
		return "hold", fmt.Sprintf("RSI %.1f is neutral and the price is near its 50-day average.", rsi)
	}
}

type marketOverviewInput struct {
	Market string `json:"market,omitempty" jsonschema:"Market or region to summarise. Default Global."`
}

type indexQuote struct {
	Name          string  `json:"name" jsonschema:"Index name."`
	Value         float64 `json:"value" jsonschema:"Index level."`
	Change        float64 `json:"change" jsonschema:"Change in points since the previous close."`
	ChangePercent float64 `json:"change_percent" jsonschema:"Change in percent since the previous close."`
}

type breadth struct {
	Advancers int64 `json:"advancers" jsonschema:"Number of listed shares that rose."`
	Decliners int64 `json:"decliners" jsonschema:"Number of listed shares that fell."`
	Unchanged int64 `json:"unchanged" jsonschema:"Number of listed shares that did not move."`
}

type marketOverview struct {
	Market    string       `json:"market" jsonschema:"The summarised market or region."`
	AsOf      string       `json:"as_of" jsonschema:"Time of the overview, RFC 3339 UTC."`
	Indices   []indexQuote `json:"indices" jsonschema:"Main indices of the market."`
	Breadth   breadth      `json:"breadth" jsonschema:"Advancing and declining shares."`
	Sentiment string       `json:"sentiment" jsonschema:"risk-on, neutral or risk-off."`
}

func (s *server) marketOverview(_ context.Context, _ *mcp.CallToolRequest, in marketOverviewInput) (*mcp.CallToolResult, *marketOverview, error) {
	market := in.Market
	if market == "" {
		market = "Global"
	}
	bases, ok := indexBases[market]
	if !ok {
		return nil, nil, fmt.Errorf("invalid market %q: want one of %s", market, quoteList(regions))
	}
	out := &marketOverview{Market: market, AsOf: s.asOf(), Indices: make([]indexQuote, 0, len(bases))}
	var sum float64
	for _, b := range bases {
		st := newStream("index", market, b.name)
		value := b.level * (1 + st.between(-0.04, 0.04))
		pct := st.between(-0.025, 0.025)
		sum += pct
		out.Indices = append(out.Indices, indexQuote{
			Name:          b.name,
			Value:         round(value, 2),
			Change:        round(value-value/(1+pct), 2),
			ChangePercent: round(pct*100, 2),
		})
	}
	br := newStream("breadth", market)
	total := br.intBetween(300, 1800)
	up := int64(float64(total) * (0.5 + sum/float64(len(bases))*10) * br.between(0.9, 1.1))
	up = min(max(up, 0), total)
	flat := min(br.intBetween(0, total/10), total-up)
	out.Breadth = breadth{Advancers: up, Decliners: total - up - flat, Unchanged: flat}
	switch avg := sum / float64(len(bases)); {
	case avg > 0.005:
		out.Sentiment = "risk-on"
	case avg < -0.005:
		out.Sentiment = "risk-off"
	default:
		out.Sentiment = "neutral"
	}
	return nil, out, nil
}

type sectorHeatmapInput struct {
	Region string `json:"region" jsonschema:"Region whose sectors to show."`
}

type sectorMove struct {
	Sector        string  `json:"sector" jsonschema:"GICS sector name."`
	ChangePercent float64 `json:"change_percent" jsonschema:"Change of the sector index today, in percent."`
	Trend         string  `json:"trend" jsonschema:"strong_gain, gain, flat, loss or strong_loss."`
}

type sectorHeatmap struct {
	Region  string       `json:"region" jsonschema:"The region shown."`
	AsOf    string       `json:"as_of" jsonschema:"Time of the heatmap, RFC 3339 UTC."`
	Sectors []sectorMove `json:"sectors" jsonschema:"The eleven GICS sectors, in GICS order."`
	Leader  string       `json:"leader" jsonschema:"Best performing sector."`
	Laggard string       `json:"laggard" jsonschema:"Worst performing sector."`
}

func (s *server) sectorHeatmap(_ context.Context, _ *mcp.CallToolRequest, in sectorHeatmapInput) (*mcp.CallToolResult, *sectorHeatmap, error) {
	if _, ok := indexBases[in.Region]; !ok {
		return nil, nil, fmt.Errorf("invalid region %q: want one of %s", in.Region, quoteList(regions))
	}
	out := &sectorHeatmap{Region: in.Region, AsOf: s.asOf(), Sectors: make([]sectorMove, 0, len(sectors))}
	best, worst := math.Inf(-1), math.Inf(1)
	for _, name := range sectors {
		pct := round(newStream("sector", in.Region, name).between(-3.5, 3.5), 2)
		out.Sectors = append(out.Sectors, sectorMove{Sector: name, ChangePercent: pct, Trend: trend(pct)})
		if pct > best {
			best, out.Leader = pct, name
		}
		if pct < worst {
			worst, out.Laggard = pct, name
		}
	}
	return nil, out, nil
}

func trend(pct float64) string {
	switch {
	case pct >= 1.5:
		return "strong_gain"
	case pct >= 0.25:
		return "gain"
	case pct > -0.25:
		return "flat"
	case pct > -1.5:
		return "loss"
	default:
		return "strong_loss"
	}
}
