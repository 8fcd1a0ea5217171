package main

import "github.com/suyashkumar/dicom/pkg/tag"

var dicomTagPixelData = tag.PixelData
