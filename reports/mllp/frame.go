// Package mllp is the Minimal Lower Layer Protocol that carries HL7 v2
// messages over TCP (HL7 v2.5.1 Appendix C, MLLP release 1): each message
// travels between a start block (0x0B) and an end block (0x1C) followed by
// a carriage return. The package reads and writes such frames, reads the
// MSH fields an acknowledgement needs, and builds original-mode
// acknowledgements (ACK with MSA and, for errors, ERR). It does no I/O of
// its own beyond the reader and writer it is handed, keeps no state
// between messages, and never logs.
package mllp

import (
	"bufio"
	"errors"
	"fmt"
	"io"
)

// Framing bytes.
const (
	// StartBlock (VT) opens a frame.
	StartBlock = 0x0b
	// EndBlock (FS) closes a frame; a carriage return follows it.
	EndBlock = 0x1c
	// CarriageReturn follows EndBlock and ends every segment.
	CarriageReturn = 0x0d
)

// DefaultMaxMessageBytes is the largest message Reader accepts when its
// limit is zero.
const DefaultMaxMessageBytes = 8 << 20

// ErrTooLarge is returned (wrapped) by ReadMessage for a frame longer than
// the reader's limit. The frame has been read to its end, so the next
// ReadMessage starts at the next frame, and ReadMessage returned the
// frame's first bytes so that the caller can still answer with the
// message's control ID.
var ErrTooLarge = errors.New("mllp: message longer than the limit")

// ErrTruncated is returned (wrapped) when the connection ends inside a
// frame: the sender disconnected mid-message. It wraps
// io.ErrUnexpectedEOF.
var ErrTruncated = fmt.Errorf("mllp: connection closed inside a message: %w", io.ErrUnexpectedEOF)

// ErrNoStartBlock is returned (wrapped) when more than the reader's limit
// of bytes arrive outside any frame: the peer does not speak MLLP.
var ErrNoStartBlock = errors.New("mllp: data outside a frame (no start block 0x0B); the peer does not speak MLLP")

// Reader reads MLLP frames from a stream.
type Reader struct {
	r   *bufio.Reader
	max int
}

// NewReader returns a Reader of r that accepts messages of up to max
// bytes (DefaultMaxMessageBytes when max <= 0).
func NewReader(r io.Reader, max int) *Reader {
	if max <= 0 {
		max = DefaultMaxMessageBytes
	}
	return &Reader{r: bufio.NewReaderSize(r, 64<<10), max: max}
}

// ReadMessage returns the next message without its framing. Carriage
// returns and line feeds between frames are skipped. It returns io.EOF
// when the stream ends between frames, an error wrapping ErrTruncated when
// it ends inside one, and the first max bytes with an error wrapping
// ErrTooLarge for an overlong frame. A start block inside a frame starts
// the frame again (a sender that gave up on a message and sent it anew);
// an end block not followed by a carriage return still ends the frame.
// Errors of the underlying reader (a read deadline) are returned as they
// are, wrapped.
func (m *Reader) ReadMessage() ([]byte, error) {
	if err := m.skipToStart(); err != nil {
		return nil, err
	}
	var msg []byte
	over := false
	for {
		chunk, err := m.r.ReadSlice(EndBlock)
		body := chunk
		if err == nil {
			body = chunk[:len(chunk)-1]
		}
		// A new start block restarts the frame.
		for i := len(body) - 1; i >= 0; i-- {
			if body[i] == StartBlock {
				msg, over = msg[:0], false
				body = body[i+1:]
				break
			}
		}
		if !over {
			if room := m.max - len(msg); len(body) > room {
				msg = append(msg, body[:room]...)
				over = true
			} else {
				msg = append(msg, body...)
			}
		}
		switch {
		case err == nil:
			// The end block: a carriage return should follow.
			if b, perr := m.r.Peek(1); perr == nil && b[0] == CarriageReturn {
				_, _ = m.r.ReadByte()
			}
			if over {
				return msg, fmt.Errorf("%w (%d bytes)", ErrTooLarge, m.max)
			}
			return msg, nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF):
			return nil, ErrTruncated
		default:
			return nil, fmt.Errorf("mllp: reading a message: %w", err)
		}
	}
}

// skipToStart consumes bytes up to and including the next start block.
func (m *Reader) skipToStart() error {
	skipped := 0
	for {
		b, err := m.r.ReadByte()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return io.EOF
			}
			return fmt.Errorf("mllp: waiting for a message: %w", err)
		}
		switch b {
		case StartBlock:
			return nil
		case CarriageReturn, '\n':
		default:
			skipped++
			if skipped > m.max {
				return ErrNoStartBlock
			}
		}
	}
}

// Frame returns msg framed for MLLP: StartBlock, msg, EndBlock,
// CarriageReturn.
func Frame(msg []byte) []byte {
	out := make([]byte, 0, len(msg)+3)
	out = append(out, StartBlock)
	out = append(out, msg...)
	return append(out, EndBlock, CarriageReturn)
}

// WriteMessage writes msg to w as one MLLP frame, in one Write.
func WriteMessage(w io.Writer, msg []byte) error {
	if _, err := w.Write(Frame(msg)); err != nil {
		return fmt.Errorf("mllp: writing a message: %w", err)
	}
	return nil
}
