package segment

// ProbToMask resizes a model probability map (h × w) back to the source
// frame's grid (rows × cols) into probOut (may be nil when only the mask is
// wanted, then scratch space is allocated) and thresholds it into mask
// (rows × cols, 1 where prob >= threshold).
func ProbToMask(mask []uint8, probOut []float32, prob []float32, h, w, rows, cols int, threshold float32) {
	if probOut == nil {
		probOut = make([]float32, rows*cols)
	}
	ResizeBilinear(probOut, rows, cols, prob, h, w)
	for i, p := range probOut[:rows*cols] {
		if p >= threshold {
			mask[i] = 1
		} else {
			mask[i] = 0
		}
	}
}

// RemoveSmallComponents clears 8-connected components of mask (rows × cols,
// values 0/1) smaller than minArea pixels, and returns how many it removed.
// labels is scratch space of rows*cols int32 (allocated when nil).
func RemoveSmallComponents(mask []uint8, rows, cols, minArea int, labels []int32) int {
	if minArea <= 1 {
		return 0
	}
	n := rows * cols
	if len(labels) < n {
		labels = make([]int32, n)
	}
	labels = labels[:n]
	clear(labels)
	stack := make([]int, 0, 64)
	members := make([]int, 0, 64)
	removed := 0
	var next int32
	for start := 0; start < n; start++ {
		if mask[start] == 0 || labels[start] != 0 {
			continue
		}
		next++
		members = members[:0]
		stack = append(stack[:0], start)
		labels[start] = next
		for len(stack) > 0 {
			i := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			members = append(members, i)
			r, c := i/cols, i%cols
			for dr := -1; dr <= 1; dr++ {
				for dc := -1; dc <= 1; dc++ {
					rr, cc := r+dr, c+dc
					if rr < 0 || rr >= rows || cc < 0 || cc >= cols {
						continue
					}
					j := rr*cols + cc
					if mask[j] != 0 && labels[j] == 0 {
						labels[j] = next
						stack = append(stack, j)
					}
				}
			}
		}
		if len(members) < minArea {
			for _, i := range members {
				mask[i] = 0
			}
			removed++
		}
	}
	return removed
}
