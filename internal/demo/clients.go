package demo

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/mail"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// The client book is fictitious but shaped like real personal data, because the gateway's
// redaction is demonstrated on it: IBANs carry valid ISO 13616 check digits, e-mail
// addresses are on example.com (RFC 2606), phone numbers are E.164 (UK ones in Ofcom's
// range reserved for drama).

type holdingSpec struct {
	symbol   string
	quantity int64
}

type clientRecord struct {
	id            string
	fullName      string
	email         string
	phone         string
	address       string
	iban          string
	accountNumber string
	riskProfile   string
	cash          float64
	holdings      []holdingSpec
}

// clientBook maps a client id to its record. It is built once per server and never
// modified, so handlers share it without locking.
type clientBook map[string]*clientRecord

func newClientBook() clientBook {
	records := []*clientRecord{
		{
			id: "C1001", fullName: "Anna Schmidt", email: "anna.schmidt@example.com",
			phone: "+4915209876543", address: "Friedrichstraße 123, 10117 Berlin, Germany",
			iban: iban("DE", "37040044"+"4711081500"), accountNumber: "4711081500",
			riskProfile: "balanced", cash: 12500,
			holdings: []holdingSpec{{"VNM", 400}, {"FPT", 250}, {"MSFT", 30}},
		},
		{
			id: "C1002", fullName: "James Whitfield", email: "j.whitfield@example.com",
			phone: "+447700900461", address: "14 Elm Row, Edinburgh EH7 4AA, United Kingdom",
			iban: iban("GB", "BARC"+"200415"+"83640172"), accountNumber: "83640172",
			riskProfile: "growth", cash: 48200.5,
			holdings: []holdingSpec{{"NVDA", 120}, {"HPG", 1500}, {"VCB", 300}, {"ASML", 15}},
		},
		{
			id: "C1003", fullName: "Nguyễn Thị Lan", email: "lan.nguyen@example.com",
			phone: "+84903123456", address: "45 Lê Lợi, Phường Bến Nghé, Quận 1, Thành phố Hồ Chí Minh, Vietnam",
			iban: iban("CH", "00762"+"011623852957"), accountNumber: "011623852957",
			riskProfile: "conservative", cash: 230000,
			holdings: []holdingSpec{{"VCB", 2000}, {"VNM", 800}, {"GAS", 600}},
		},
		{
			id: "C1004", fullName: "Marie Dubois", email: "marie.dubois@example.com",
			phone: "+352621123456", address: "12 Rue de la Gare, L-1611 Luxembourg, Luxembourg",
			iban: iban("LU", "002"+"1150347800105"), accountNumber: "1150347800105",
			riskProfile: "balanced", cash: 7300.25,
			holdings: []holdingSpec{{"SAP", 40}, {"MWG", 900}},
		},
		{
			id: "C1005", fullName: "Lukas Gruber", email: "lukas.gruber@example.com",
			phone: "+436641234567", address: "Mariahilfer Straße 77, 1060 Wien, Austria",
			iban: iban("AT", "20111"+"82291473600"), accountNumber: "82291473600",
			riskProfile: "aggressive", cash: 1500,
			holdings: []holdingSpec{{"TSLA", 60}, {"FPT", 1200}, {"HPG", 2500}, {"NVDA", 25}},
		},
		{
			id: "C1006", fullName: "Trần Quốc Bảo", email: "bao.tran@example.com",
			phone: "+4917655501234", address: "Kastanienallee 9, 10435 Berlin, Germany",
			iban: iban("DE", "10050000"+"6603127945"), accountNumber: "6603127945",
			riskProfile: "growth", cash: 19999.99,
			holdings: []holdingSpec{{"MSN", 700}, {"VNM", 150}},
		},
	}
	book := make(clientBook, len(records))
	for _, r := range records {
		book[r.id] = r
	}
	return book
}

// lookup returns the client with the given id or an error the caller can show.
func (b clientBook) lookup(id string) (*clientRecord, error) {
	if err := checkClientID(id); err != nil {
		return nil, err
	}
	c, ok := b[id]
	if !ok {
		// The message does not list valid ids, so the tool cannot be used to enumerate them.
		return nil, fmt.Errorf("client %q not found", id)
	}
	return c, nil
}

func (c *clientRecord) heldQuantity(symbol string) int64 {
	for _, h := range c.holdings {
		if h.symbol == symbol {
			return h.quantity
		}
	}
	return 0
}

type clientInput struct {
	ClientID string `json:"client_id" jsonschema:"Client identifier: C followed by four digits, e.g. C1001."`
}

type holding struct {
	Symbol        string  `json:"symbol" jsonschema:"Ticker symbol."`
	Quantity      int64   `json:"quantity" jsonschema:"Number of shares held."`
	Price         float64 `json:"price" jsonschema:"Last price per share."`
	MarketValue   float64 `json:"market_value" jsonschema:"quantity × price."`
	WeightPercent float64 `json:"weight_percent" jsonschema:"Share of the total portfolio value, in percent."`
}

type clientPortfolio struct {
	ClientID          string    `json:"client_id" jsonschema:"Client identifier."`
	FullName          string    `json:"full_name" jsonschema:"Client's full name (personal data)."`
	Email             string    `json:"email" jsonschema:"Client's e-mail address (personal data)."`
	Phone             string    `json:"phone" jsonschema:"Client's phone number in E.164 form (personal data)."`
	Address           string    `json:"address" jsonschema:"Client's postal address (personal data)."`
	IBAN              string    `json:"iban" jsonschema:"IBAN of the client's settlement account (personal data)."`
	AccountNumber     string    `json:"account_number" jsonschema:"Domestic account number (personal data)."`
	RiskProfile       string    `json:"risk_profile" jsonschema:"conservative, balanced, growth or aggressive."`
	ValuationCurrency string    `json:"valuation_currency" jsonschema:"ISO 4217 currency of all values."`
	CashBalance       float64   `json:"cash_balance" jsonschema:"Uninvested cash."`
	Holdings          []holding `json:"holdings" jsonschema:"Positions, largest first."`
	TotalValue        float64   `json:"total_value" jsonschema:"Cash plus the market value of all holdings."`
	AsOf              string    `json:"as_of" jsonschema:"Valuation time, RFC 3339 UTC."`
}

// portfolio values a client's holdings at the fictitious last prices.
func (s *server) portfolio(c *clientRecord) *clientPortfolio {
	out := &clientPortfolio{
		ClientID:          c.id,
		FullName:          c.fullName,
		Email:             c.email,
		Phone:             c.phone,
		Address:           c.address,
		IBAN:              c.iban,
		AccountNumber:     c.accountNumber,
		RiskProfile:       c.riskProfile,
		ValuationCurrency: "USD",
		CashBalance:       c.cash,
		Holdings:          make([]holding, 0, len(c.holdings)),
		AsOf:              s.asOf(),
	}
	total := c.cash
	for _, h := range c.holdings {
		p := lastPrice(h.symbol)
		v := round(p*float64(h.quantity), 2)
		total += v
		out.Holdings = append(out.Holdings, holding{Symbol: h.symbol, Quantity: h.quantity, Price: p, MarketValue: v})
	}
	for i := range out.Holdings {
		out.Holdings[i].WeightPercent = round(out.Holdings[i].MarketValue/total*100, 2)
	}
	slices.SortStableFunc(out.Holdings, func(a, b holding) int {
		switch {
		case a.MarketValue > b.MarketValue:
			return -1
		case a.MarketValue < b.MarketValue:
			return 1
		}
		return strings.Compare(a.Symbol, b.Symbol)
	})
	out.TotalValue = round(total, 2)
	return out
}

func (s *server) clientPortfolio(_ context.Context, _ *mcp.CallToolRequest, in clientInput) (*mcp.CallToolResult, *clientPortfolio, error) {
	c, err := s.book.lookup(in.ClientID)
	if err != nil {
		return nil, nil, err
	}
	return nil, s.portfolio(c), nil
}

type tradeOrderInput struct {
	ClientID   string  `json:"client_id" jsonschema:"Client for whom the order is placed, e.g. C1001."`
	Symbol     string  `json:"symbol" jsonschema:"Ticker symbol: 1 to 10 upper-case letters."`
	Side       string  `json:"side" jsonschema:"buy or sell."`
	Quantity   int64   `json:"quantity" jsonschema:"Number of shares, at least 1."`
	OrderType  string  `json:"order_type" jsonschema:"market (execute at the best price) or limit (execute at limit_price or better)."`
	LimitPrice float64 `json:"limit_price,omitzero" jsonschema:"Limit price per share; required for limit orders, not allowed for market orders."`
}

type tradeOrder struct {
	OrderID        string  `json:"order_id" jsonschema:"Order identifier, derived from the order's fields."`
	Status         string  `json:"status" jsonschema:"Order status; always accepted."`
	ClientID       string  `json:"client_id" jsonschema:"Client for whom the order was placed."`
	Symbol         string  `json:"symbol" jsonschema:"Ticker symbol."`
	Side           string  `json:"side" jsonschema:"buy or sell."`
	Quantity       int64   `json:"quantity" jsonschema:"Number of shares."`
	OrderType      string  `json:"order_type" jsonschema:"market or limit."`
	LimitPrice     float64 `json:"limit_price,omitzero" jsonschema:"Limit price per share, for limit orders."`
	EstimatedPrice float64 `json:"estimated_price" jsonschema:"Expected execution price per share."`
	EstimatedValue float64 `json:"estimated_value" jsonschema:"quantity × estimated_price."`
	Currency       string  `json:"currency" jsonschema:"ISO 4217 currency of prices and values."`
	SubmittedAt    string  `json:"submitted_at" jsonschema:"Submission time, RFC 3339 UTC."`
}

// maxOrderQuantity bounds one order, like a broker's fat-finger limit.
const maxOrderQuantity = 1_000_000

func (s *server) tradeOrder(_ context.Context, _ *mcp.CallToolRequest, in tradeOrderInput) (*mcp.CallToolResult, *tradeOrder, error) {
	c, err := s.book.lookup(in.ClientID)
	if err != nil {
		return nil, nil, err
	}
	if err := checkSymbol(in.Symbol); err != nil {
		return nil, nil, err
	}
	if in.Side != "buy" && in.Side != "sell" {
		return nil, nil, fmt.Errorf("invalid side %q: want \"buy\" or \"sell\"", in.Side)
	}
	if in.Quantity < 1 || in.Quantity > maxOrderQuantity {
		return nil, nil, fmt.Errorf("invalid quantity %d: want 1 to %d shares", in.Quantity, maxOrderQuantity)
	}
	price := lastPrice(in.Symbol)
	switch in.OrderType {
	case "market":
		if in.LimitPrice != 0 {
			return nil, nil, errors.New("limit_price is not allowed for a market order; use order_type \"limit\"")
		}
	case "limit":
		if in.LimitPrice <= 0 {
			return nil, nil, errors.New("limit_price is required for a limit order and must be positive")
		}
		price = round(in.LimitPrice, 4)
	default:
		return nil, nil, fmt.Errorf("invalid order_type %q: want \"market\" or \"limit\"", in.OrderType)
	}
	if in.Side == "sell" {
		if held := c.heldQuantity(in.Symbol); in.Quantity > held {
			return nil, nil, fmt.Errorf("cannot sell %d %s: client %s holds %d", in.Quantity, in.Symbol, c.id, held)
		}
	}
	return nil, &tradeOrder{
		OrderID:        orderID(in),
		Status:         "accepted",
		ClientID:       c.id,
		Symbol:         in.Symbol,
		Side:           in.Side,
		Quantity:       in.Quantity,
		OrderType:      in.OrderType,
		LimitPrice:     in.LimitPrice,
		EstimatedPrice: price,
		EstimatedValue: round(price*float64(in.Quantity), 2),
		Currency:       "USD",
		SubmittedAt:    s.asOf(),
	}, nil
}

// orderID derives the order id from the order's fields only, so tests and audit
// comparisons can predict it.
func orderID(in tradeOrderInput) string {
	key := strings.Join([]string{
		in.ClientID, in.Symbol, in.Side, strconv.FormatInt(in.Quantity, 10), in.OrderType,
		strconv.FormatFloat(in.LimitPrice, 'g', -1, 64),
	}, "\x00")
	sum := sha256.Sum256([]byte(key))
	return "ORD-" + strings.ToUpper(hex.EncodeToString(sum[:10]))
}

type profileUpdateInput struct {
	ClientID string `json:"client_id" jsonschema:"Client whose profile to update, e.g. C1001."`
	Email    string `json:"email,omitempty" jsonschema:"New e-mail address."`
	Phone    string `json:"phone,omitempty" jsonschema:"New phone number in E.164 form, e.g. +447700900123."`
	Address  string `json:"address,omitempty" jsonschema:"New postal address on one line."`
}

type clientProfile struct {
	ClientID      string   `json:"client_id" jsonschema:"Client identifier."`
	FullName      string   `json:"full_name" jsonschema:"Client's full name (personal data)."`
	Email         string   `json:"email" jsonschema:"E-mail address after the update (personal data)."`
	Phone         string   `json:"phone" jsonschema:"Phone number after the update (personal data)."`
	Address       string   `json:"address" jsonschema:"Postal address after the update (personal data)."`
	ChangedFields []string `json:"changed_fields" jsonschema:"Fields whose value changed: email, phone, address."`
	UpdatedAt     string   `json:"updated_at" jsonschema:"Time of the update, RFC 3339 UTC."`
}

const maxAddressLen = 200

func (s *server) profileUpdate(_ context.Context, _ *mcp.CallToolRequest, in profileUpdateInput) (*mcp.CallToolResult, *clientProfile, error) {
	c, err := s.book.lookup(in.ClientID)
	if err != nil {
		return nil, nil, err
	}
	if in.Email == "" && in.Phone == "" && in.Address == "" {
		return nil, nil, errors.New("nothing to update: give at least one of email, phone or address")
	}
	out := &clientProfile{
		ClientID: c.id, FullName: c.fullName, Email: c.email, Phone: c.phone, Address: c.address,
		ChangedFields: []string{}, UpdatedAt: s.asOf(),
	}
	if in.Email != "" {
		if err := checkEmail(in.Email); err != nil {
			return nil, nil, err
		}
		if in.Email != out.Email {
			out.Email = in.Email
			out.ChangedFields = append(out.ChangedFields, "email")
		}
	}
	if in.Phone != "" {
		if err := checkPhone(in.Phone); err != nil {
			return nil, nil, err
		}
		if in.Phone != out.Phone {
			out.Phone = in.Phone
			out.ChangedFields = append(out.ChangedFields, "phone")
		}
	}
	if in.Address != "" {
		if err := checkAddress(in.Address); err != nil {
			return nil, nil, err
		}
		if in.Address != out.Address {
			out.Address = in.Address
			out.ChangedFields = append(out.ChangedFields, "address")
		}
	}
	return nil, out, nil
}

func checkEmail(email string) error {
	a, err := mail.ParseAddress(email)
	if err != nil || a.Address != email || a.Name != "" || len(email) > 254 {
		return fmt.Errorf("invalid email %q: want a plain address such as name@example.com", email)
	}
	return nil
}

func checkPhone(phone string) error {
	ok := len(phone) >= 8 && len(phone) <= 16 && phone[0] == '+' && phone[1] >= '1' && phone[1] <= '9'
	for i := 2; ok && i < len(phone); i++ {
		ok = phone[i] >= '0' && phone[i] <= '9'
	}
	if !ok {
		return fmt.Errorf("invalid phone %q: want E.164 form, + and 7 to 15 digits, e.g. +447700900123", phone)
	}
	return nil
}

func checkAddress(addr string) error {
	if n := len([]rune(addr)); n < 5 || n > maxAddressLen {
		return fmt.Errorf("invalid address: want 5 to %d characters, got %d", maxAddressLen, n)
	}
	if strings.IndexFunc(addr, unicode.IsControl) >= 0 {
		return errors.New("invalid address: control characters are not allowed; write the address on one line")
	}
	return nil
}
